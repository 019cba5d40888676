//! Builds the hooks' hot path (`src/hooks.c`; why it is C is said at its top).

fn main() {
    println!("cargo:rerun-if-changed=src/hooks.c");
    cc::Build::new()
        .file("src/hooks.c")
        .opt_level(2)
        .flag("-fno-omit-frame-pointer")
        .flag("-ftls-model=initial-exec")
        .flag("-fvisibility=hidden")
        .warnings(true)
        .compile("leakhound_hooks");
}
