//! Checks that the shared module files cannot panic: they are compiled as the
//! kernel compiles them (`#[path]` into a `no_std` crate, overflow checks on,
//! `panic=abort`, the kernel's rustc lints as errors) and the object file
//! must not reference any panic routine (`core::panicking::*`, slice index
//! failures, `unwrap`/`expect` failures). In the kernel a panic is a BUG().

use std::path::PathBuf;
use std::process::Command;

#[test]
fn shared_modules_compile_as_kernel_code_without_panic_paths() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let harness = dir.join("tests/no_panic/harness.rs");
    let out_dir = std::env::temp_dir().join(format!("wbformat-no-panic-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let obj = out_dir.join("harness.o");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let compile = |no_cross_crate_inline: bool| {
        let mut cmd = Command::new(&rustc);
        cmd.args([
            "--edition=2021",
            "--crate-type=lib",
            "--crate-name=wbformat_kernel_harness",
        ])
        .args([
            "-C",
            "opt-level=2",
            "-C",
            "overflow-checks=on",
            "-C",
            "panic=abort",
        ])
        .args([
            "-D",
            "warnings",
            "-D",
            "missing_docs",
            "-D",
            "rust_2018_idioms",
            "-D",
            "unsafe_code",
        ])
        .args([
            "-D",
            "unsafe_op_in_unsafe_fn",
            "-D",
            "non_ascii_idents",
            "-D",
            "unreachable_pub",
        ]);
        if no_cross_crate_inline {
            // Small non-generic functions are otherwise left to the crates
            // that call them and never compiled here, hiding their panics.
            cmd.env("RUSTC_BOOTSTRAP", "1")
                .args(["-Z", "cross-crate-inline-threshold=never"]);
        }
        cmd.arg("--emit=obj").arg("-o").arg(&obj).arg(&harness);
        cmd.output().expect("cannot run rustc")
    };
    let mut output = compile(true);
    if !output.status.success()
        && String::from_utf8_lossy(&output.stderr).contains("cross-crate-inline-threshold")
    {
        output = compile(false);
    }
    assert!(
        output.status.success(),
        "kernel-style compilation failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&obj).unwrap();
    let _ = std::fs::remove_dir_all(&out_dir);
    let text = String::from_utf8_lossy(&bytes);
    for needle in [
        "panic",
        "slice_index_fail",
        "slice_end_index",
        "slice_start_index",
        "unwrap_failed",
        "expect_failed",
    ] {
        assert!(
            !text.contains(needle),
            "the object file references `{needle}`: some code path in rust/wbformat/src can panic \
             (run `nm` on a build of tests/no_panic/harness.rs to find it)"
        );
    }
}
