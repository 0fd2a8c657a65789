//! Compiles `proto/tusk/*.proto` with protox (a pure-Rust protobuf compiler), so building
//! Tusk needs no system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tusk/client_namenode.proto",
        "proto/tusk/namenode_storage.proto",
        "proto/tusk/datanode_namenode.proto",
        "proto/tusk/data_transfer.proto",
        "proto/tusk/checkpoint.proto",
        "proto/tusk/mapreduce.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
