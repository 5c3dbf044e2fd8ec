//! The server binary as child processes over one set of records: started pinned to the given
//! CPUs, waited for until they answer over TLS, and read from outside (/proc and access logs).

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_core::net::{Client, ClientConfig};
use outpost_server::admin;

use crate::records::Records;
use crate::setup::Result;

/// One server process, stopped when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub ca: Vec<u8>,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self, credential: Option<&str>) -> Result<Client> {
        client(self.addr, &self.ca, credential)
    }

    /// (peak resident set, current resident set) in bytes.
    pub fn memory(&self) -> Result<(u64, u64)> {
        memory(self.pid())
    }

    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time(&self.pid().to_string())
    }

    /// The access log's length now: `server_times` reads what comes after it.
    pub fn log_mark(&self) -> Result<u64> {
        Ok(fs::metadata(&self.log)?.len())
    }
}

fn client(addr: SocketAddr, ca: &[u8], credential: Option<&str>) -> Result<Client> {
    let mut config = ClientConfig::new(addr.ip().to_string(), addr.port());
    config.ca_pem = Some(ca.to_vec());
    config.credential = credential.map(str::to_string);
    Ok(Client::new(config)?)
}

/// Starts `count` server processes over `records`, each on a free loopback port, pinned to
/// `cpus` (a taskset list such as `0` or `0,1`) if given. They share the data directory, so
/// the first makes the TLS certificate and the signing key and the others use them.
pub async fn start(bin: &Path, records: &Records, count: usize, cpus: Option<&str>) -> Result<Vec<Server>> {
    let mut servers = vec![start_one(bin, records, 1, cpus)?];
    servers[0].ca = wait_until_up(&mut servers[0], &records.data_dir).await?;
    for i in 2..=count {
        servers.push(start_one(bin, records, i, cpus)?);
    }
    for server in &mut servers[1..] {
        server.ca = wait_until_up(server, &records.data_dir).await?;
    }
    Ok(servers)
}

fn start_one(bin: &Path, records: &Records, index: usize, cpus: Option<&str>) -> Result<Server> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut command = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    if let Some(url) = &records.url {
        command.env("OUTPOST_DATABASE_URL", url);
    }
    let log = records.data_dir.join(format!("server-{index}.log"));
    let child = command
        .arg("serve")
        .env("OUTPOST_ADDR", addr.to_string())
        .env("OUTPOST_DATA_DIR", &records.data_dir)
        .env("NO_COLOR", "1")
        // Every simulated phone enrols from this one loopback address.
        .env("OUTPOST_ENROL_RATE", "off")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log)?)
        .spawn()?;
    Ok(Server {
        child,
        addr,
        ca: Vec::new(),
        log,
    })
}

/// Waits until the server answers over TLS; returns the CA its clients trust.
async fn wait_until_up(server: &mut Server, data_dir: &Path) -> Result<Vec<u8>> {
    let ca_path = data_dir.join("tls").join("ca.pem");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(ca) = fs::read(&ca_path)
            && !ca.is_empty()
            && client(server.addr, &ca, None)?.health().await.is_ok()
        {
            return Ok(ca);
        }
        if let Some(status) = server.child.try_wait()? {
            return Err(format!("the server exited ({status}); its log ends:\n{}", log_tail(&server.log)).into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the server did not answer within 60 s; its log ends:\n{}",
                log_tail(&server.log)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines of a server's log: it is removed with the run's directory.
fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs one of the server's admin commands (`create-team`, `add-worker`, ...) in this process,
/// against `storage`; returns what the command line would have printed. The binary's own code,
/// without starting a process and opening the database for each of thousands.
pub fn admin(
    storage: &dyn outpost_server::storage::Storage,
    records: &Records,
    command: admin::Command,
) -> Result<String> {
    let database = outpost_server::database::Database::from_url(records.url.as_deref(), &records.data_dir)?;
    Ok(admin::run(command, storage, &database)?)
}

/// The code in `enrol-code`'s answer: the line of four groups of four.
pub fn enrolment_code(printed: &str) -> Result<String> {
    printed
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 19 && l.split('-').count() == 4)
        .map(str::to_string)
        .ok_or_else(|| format!("no enrolment code in {printed:?}").into())
}

/// The servers' own time for the sync requests logged after `marks` (one per server, from
/// `log_mark`), from their access logs (`micros=`): from the request's arrival to its answer
/// being ready, without the network or the device. Sorted.
pub fn server_times(servers: &[Server], marks: &[u64]) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for (server, &mark) in servers.iter().zip(marks) {
        let text = fs::read(&server.log)?;
        let text = String::from_utf8_lossy(text.get(mark as usize..).unwrap_or_default());
        times.extend(text.lines().filter(|l| l.contains("/v1/sync")).filter_map(|l| {
            let after = &l[l.find("micros=")? + "micros=".len()..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok().map(Duration::from_micros)
        }));
    }
    times.sort();
    Ok(times)
}

/// What the servers logged after `marks` besides their access log lines (warnings, audit
/// checkpoints; the first 20 lines), then their `slowest` sync requests: what to look at when a
/// few syncs were slow.
pub fn log_notes(servers: &[Server], marks: &[u64], slowest: usize) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let mut syncs = Vec::new();
    for (i, (server, &mark)) in servers.iter().zip(marks).enumerate() {
        let text = fs::read(&server.log)?;
        let text = String::from_utf8_lossy(text.get(mark as usize..).unwrap_or_default());
        for line in text.lines() {
            match line.find("micros=") {
                Some(at) if line.contains("/v1/sync") => {
                    let digits: String = line[at + "micros=".len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    syncs.push((
                        digits.parse::<u64>().unwrap_or_default(),
                        format!("server {}: {line}", i + 1),
                    ));
                }
                // Other requests: enrolment, health.
                Some(_) => {}
                None => notes.push(format!("server {}: {line}", i + 1)),
            }
        }
    }
    syncs.sort_by_key(|s| std::cmp::Reverse(s.0));
    let more = notes.len().saturating_sub(20);
    notes.truncate(20);
    if more > 0 {
        notes.push(format!("... and {more} more lines"));
    }
    notes.extend(syncs.into_iter().take(slowest).map(|(_, line)| line));
    Ok(notes)
}

/// (peak resident set, current resident set) in bytes, from /proc/<pid>/status.
pub fn memory(pid: u32) -> Result<(u64, u64)> {
    Ok((status_field(pid, "VmHWM:")?, status_field(pid, "VmRSS:")?))
}

/// A size field of /proc/<pid>/status (`VmRSS:`, `RssAnon:`...) in bytes.
pub fn status_field(pid: u32, name: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))?)
}

/// CPU time (user + system) a process has used, from /proc/<pid>/stat, in clock ticks of
/// 1/100 s (USER_HZ, 100 on every Linux this runs on).
pub fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("unreadable /proc stat")
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

pub fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
}
