//! Link-time settings that make `target/*/vidcls` run without LD_LIBRARY_PATH and see CUDA.
//!
//! torch-sys finds libtorch (LIBTORCH, LIBTORCH_USE_PYTORCH, or the `.libtorch` link that
//! scripts/setup.sh makes) and tells us its lib directory through DEP_TCH_LIBTORCH_LIB.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report libtorch's lib directory; no rpath set");
        println!("cargo:rustc-env=VIDCLS_LIBTORCH_LIB=unknown");
        println!("cargo:rustc-env=VIDCLS_LIBTORCH_VERSION=unknown");
        return;
    };
    // Resolve links so the rpath survives a re-pointed `.libtorch`.
    let lib = PathBuf::from(&lib)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(&lib));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=VIDCLS_LIBTORCH_LIB={}", lib.display());
    println!(
        "cargo:rustc-env=VIDCLS_LIBTORCH_VERSION={}",
        libtorch_version(&lib)
    );
    // libtorch_cuda registers the CUDA backend from static initialisers; nothing references it
    // by symbol, so --as-needed drops it and Cuda::is_available() turns false. Keep it linked.
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// The version string of the libtorch in `lib/..`: a pip wheel's `version.py`, or the
/// `build-version` file of a standalone libtorch archive.
fn libtorch_version(lib: &std::path::Path) -> String {
    let Some(root) = lib.parent() else {
        return "unknown".into();
    };
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                return rest
                    .trim_start_matches([' ', '=', ':', 's', 't', 'r'])
                    .trim()
                    .trim_matches(['\'', '"'])
                    .to_string();
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
