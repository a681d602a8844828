//! `criusctl`: crius's CRI client (issue 7). Not written yet: it says so and fails,
//! rather than pretending to work.

fn main() {
    eprintln!("criusctl: not implemented yet (issue 7); use crictl --runtime-endpoint unix:///run/crius/crius.sock");
    std::process::exit(1);
}
