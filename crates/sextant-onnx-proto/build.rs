//! Compiles the vendored `proto/onnx.proto3` into prost types. `protox` parses the schema
//! in pure Rust because `protoc` is not installed on the build machines.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto3");
    let descriptors = protox::compile(["onnx.proto3"], ["proto"]).expect("parse proto/onnx.proto3");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("generate ONNX prost types");
}
