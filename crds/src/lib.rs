//! The `ferrolb.io` API: custom resource types (field names follow MetalLB's resources of the
//! same name, so a MetalLB config ports by changing `apiVersion`), the annotations FerroLB reads
//! and writes, address parsing, and cross-object validation shared by controller and speaker.

// kube's `printcolumn(name = …, type_ = …)` lists repeat keys by design; clippy reads them as
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod address;
pub mod annotations;
pub mod bfd;
pub mod bgp_advertisement;
pub mod bgp_peer;
pub mod community;
pub mod l2;
pub mod manifest;
pub mod pool;
pub mod schema;
pub mod selector;
pub mod service;
pub mod serving;
pub mod status;
pub mod validate;

pub use bfd::{BFDProfile, BFDProfileSpec};
pub use bgp_advertisement::{BGPAdvertisement, BGPAdvertisementSpec};
pub use bgp_peer::{BGPPeer, BGPPeerSpec, BGPPeerStatus, BGPSessionStatus, DynamicAsn};
pub use community::{Community, CommunitySpec};
pub use l2::{L2Advertisement, L2AdvertisementSpec};
pub use pool::{IPAddressPool, IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation};

/// API group of every FerroLB kind.
pub const GROUP: &str = "ferrolb.io";
/// Namespace FerroLB reads its configuration from unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "ferrolb-system";
