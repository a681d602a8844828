fn main() {
    eprintln!("criusd: not built yet");
    std::process::exit(1);
}
