//! Compiles `proto/*.proto` in-process with protox: no `protoc` needed on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/inventory.proto",
        "proto/payment.proto",
        "proto/catalog.proto",
        "proto/order.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
