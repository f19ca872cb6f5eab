//! Bazaar's internal gRPC contracts and the glue every gRPC server and client shares.
//!
//! The `.proto` files in `proto/` are compiled at build time by `protox` (a pure-Rust protobuf
//! compiler) and `tonic-prost-build`: no `protoc` is needed on the machine.
#![forbid(unsafe_code)]

pub mod grpc;

/// `bazaar.inventory.v1`: Reserve, Release, Commit.
pub mod inventory {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("bazaar.inventory.v1");
}

/// `bazaar.payment.v1`: Charge, Refund, GetPayment.
pub mod payment {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("bazaar.payment.v1");
}

/// `bazaar.catalog.v1`: GetProducts.
pub mod catalog {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("bazaar.catalog.v1");
}

/// `bazaar.order.v1`: ClaimForShipment.
pub mod order {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("bazaar.order.v1");
}
