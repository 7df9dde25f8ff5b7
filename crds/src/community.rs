//! `Community`: named aliases for BGP community values, used by `BGPAdvertisement.communities`.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::schema::CommunityValue;
use crate::status::ConditionsStatus;

/// A set of named community values (`vpn-only: 65000:100`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "Community",
    plural = "communities",
    namespaced,
    doc = "A Community defines named aliases for BGP community values.",
    status = "ConditionsStatus",
    category = "ferrolb",
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct CommunitySpec {
    /// The aliases; names are unique (the API server rejects duplicates).
    #[serde(default)]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub communities: Vec<CommunityAlias>,
}

/// One alias.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct CommunityAlias {
    /// Alias name, as used in `BGPAdvertisement.communities`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-zA-Z][-a-zA-Z0-9_.]*$")
    )]
    pub name: String,
    /// The value: `65000:100` or `large:65000:1:2`.
    pub value: CommunityValue,
}
