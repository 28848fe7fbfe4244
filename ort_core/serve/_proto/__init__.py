"""Generated protobuf modules of the Open Inference Protocol (see the .proto files)."""
