//! Kotlin on the JVM for the tests: the compiler from `scripts/tools` (npm's `kotlin-compiler`),
//! Debian's JNA, and compiled jars cached under `<target>/kotlin` by a hash of their sources.
//!
//! Compiling the generated bindings takes most of a minute, so each jar is compiled once per
//! distinct source. `scripts/demo.sh` keys its jars the same way (see `cache_key`), so the demo
//! and these tests reuse each other's.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `libjna-java` puts JNA.
const JNA: &str = "/usr/share/java/jna.jar";

/// The Kotlin compiler, its standard library and JNA.
#[derive(Debug)]
pub struct Kotlin {
    home: PathBuf,
}

impl Kotlin {
    /// Finds the compiler `npm install --prefix scripts/tools` installs, failing the test with
    /// how to get it when it is missing.
    pub fn find() -> Self {
        let home = repo_root().join("scripts/tools/node_modules/kotlin-compiler");
        assert!(
            home.join("bin/kotlinc").is_file(),
            "the Kotlin compiler is not installed at {}: run `npm install --prefix scripts/tools` \
             (scripts/test.sh does it)",
            home.display()
        );
        assert!(
            Path::new(JNA).is_file(),
            "JNA is missing at {JNA}: install Debian's libjna-java"
        );
        Self { home }
    }

    /// The compiler's version, part of every cached jar's name.
    pub fn version(&self) -> String {
        std::fs::read_to_string(self.home.join("build.txt"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }

    /// The jar of the generated bindings (`uniffi/outpost/outpost.kt` under `generated`),
    /// compiled now or taken from the cache.
    pub fn bindings_jar(&self, generated: &Path) -> PathBuf {
        let source = generated.join("uniffi/outpost/outpost.kt");
        self.cached_jar("outpost", &[source], &[PathBuf::from(JNA)])
    }

    /// Compiles `sources` against `classpath` into a jar named after `name` and a hash of the
    /// sources and classpath, unless that jar is already cached.
    pub fn cached_jar(&self, name: &str, sources: &[PathBuf], classpath: &[PathBuf]) -> PathBuf {
        let dir = target_dir().join("kotlin");
        std::fs::create_dir_all(&dir).unwrap();
        let jar = dir.join(format!(
            "{name}-{}-{}.jar",
            self.version(),
            cache_key(sources, classpath)
        ));
        if jar.is_file() {
            println!("reusing {}", jar.display());
            return jar;
        }
        // Written beside its final name and renamed, so a run cut short leaves no half jar.
        let partial = dir.join(format!("{name}.{}.partial.jar", std::process::id()));
        let started = std::time::Instant::now();
        let mut kotlinc = Command::new(self.home.join("bin/kotlinc"));
        kotlinc
            .args(["-nowarn", "-d"])
            .arg(&partial)
            .arg("-cp")
            .arg(join(classpath))
            .args(sources);
        super::run(&mut kotlinc, &format!("kotlinc ({name})"));
        std::fs::rename(&partial, &jar).unwrap();
        println!("compiled {} in {:.1?}", jar.display(), started.elapsed());
        jar
    }

    /// `java` with `classpath` plus the Kotlin standard library and JNA, loading the bindings
    /// library from `library`'s directory, ready to run `main_class`.
    pub fn java(&self, classpath: &[PathBuf], library: &Path, main_class: &str) -> Command {
        let mut full = classpath.to_vec();
        full.push(self.home.join("lib/kotlin-stdlib.jar"));
        full.push(PathBuf::from(JNA));
        let mut java = Command::new("java");
        java.arg("-cp")
            .arg(join(&full))
            .arg(format!("-Djna.library.path={}", library.parent().unwrap().display()))
            .arg(main_class);
        java
    }
}

/// Hex SHA-256 (first 16 digits) of the sources' bytes, in order, followed by each classpath
/// entry's file name and a newline. `scripts/demo.sh` computes the same with `sha256sum`.
pub fn cache_key(sources: &[PathBuf], classpath: &[PathBuf]) -> String {
    let mut input = Vec::new();
    for source in sources {
        input.extend(std::fs::read(source).unwrap_or_else(|e| panic!("reading {}: {e}", source.display())));
    }
    for entry in classpath {
        input.extend(entry.file_name().unwrap().as_encoded_bytes());
        input.push(b'\n');
    }
    sha256_hex(&input)[..16].to_string()
}

/// `sha256sum` of `input`: the same tool the shell script uses, so the keys cannot drift.
fn sha256_hex(input: &[u8]) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) is needed to key the jar cache");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "sha256sum failed");
    String::from_utf8(output.stdout).unwrap()[..64].to_string()
}

/// The workspace's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The cargo target directory this test was built in.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // `<target>/<profile>/deps/<test binary>`
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn join(paths: &[PathBuf]) -> std::ffi::OsString {
    std::env::join_paths(paths).unwrap()
}
