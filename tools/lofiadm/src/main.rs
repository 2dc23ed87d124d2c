//! The lofiadm command; everything is in the library (src/lib.rs).

fn main() -> std::process::ExitCode {
    lofiadm::main(std::env::args_os())
}
