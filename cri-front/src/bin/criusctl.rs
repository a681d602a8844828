fn main() {
    eprintln!("criusctl: not built yet");
    std::process::exit(1);
}
