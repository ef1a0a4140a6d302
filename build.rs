//! Link-time settings that make `target/*/vidcls` run without LD_LIBRARY_PATH and see CUDA.
//!
//! torch-sys finds libtorch (LIBTORCH, LIBTORCH_USE_PYTORCH, or the `.libtorch` link that
//! scripts/setup.sh makes) and tells us its lib directory through DEP_TCH_LIBTORCH_LIB.
//!
//! `VIDCLS_RPATH` replaces the rpath to that directory: scripts/package.sh sets it to
//! `$ORIGIN/../lib` so a release bundle finds its own copy of libtorch wherever it is unpacked.
//! Without the `cuda` feature libtorch_cuda is not linked, so the binary needs only the CPU
//! libraries (libtorch_cpu, libc10 and what they pull in).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=VIDCLS_RPATH");
    let rpath = env::var("VIDCLS_RPATH").ok().filter(|r| !r.is_empty());
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
    match &rpath {
        // Relocatable: `$ORIGIN` reaches the dynamic linker literally (no shell in between).
        Some(r) => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{r}");
            println!("cargo:rustc-env=VIDCLS_LIBTORCH_LIB={r}");
        }
        None => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
            println!("cargo:rustc-env=VIDCLS_LIBTORCH_LIB={}", lib.display());
        }
    }
    println!(
        "cargo:rustc-env=VIDCLS_LIBTORCH_VERSION={}",
        libtorch_version(&lib)
    );
    // libtorch_cuda registers the CUDA backend from static initialisers; nothing references it
    // by symbol, so --as-needed drops it and Cuda::is_available() turns false. Keep it linked
    // unless this is a CPU-only build (`--no-default-features`).
    let cuda = env::var_os("CARGO_FEATURE_CUDA").is_some();
    if cuda && lib.join("libtorch_cuda.so").exists() {
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
