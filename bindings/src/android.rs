//! Android-only start-up: hands the app's `Context` to rustls-platform-verifier, which calls
//! Android's own certificate verifier through the JVM when the client transport opens TLS.
//!
//! The Kotlin side is `app.outpost.core.OutpostAndroid` (bindings/android); the app calls
//! `OutpostAndroid.init(applicationContext)` once, before any sync.

use jni::EnvUnowned;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JObject};

/// `OutpostAndroid.init(context)`. Later calls are no-ops: the verifier keeps the first context.
/// A failure is thrown to Kotlin: a Java exception raised on the way (say, by the context's
/// `getClassLoader`) as itself, any other error as a RuntimeException.
// The JVM finds a native method by this exact symbol name, so it must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "system" fn Java_app_outpost_core_OutpostAndroid_init<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) {
    env.with_env(|env| rustls_platform_verifier::android::init_with_env(env, context))
        .resolve::<ThrowRuntimeExAndDefault>();
}
