fn main() {
    std::process::exit(wbpattern::cli::main_entry());
}
