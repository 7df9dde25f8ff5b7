use super::*;

#[test]
fn parses_bird_routes() {
    let text = "BIRD 2.0.12 ready.\nTable master4:\n\
        198.18.100.0/32      unicast [flb_node1_v4 23:48:31.827] * (100) [AS64600i]\n\
        \tvia 198.18.0.11 on eth0\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 64600\n\
        \tBGP.next_hop: 198.18.0.11\n\tBGP.local_pref: 100\n\tBGP.community: (65000,200) (65000,100)\n\
        \tBGP.large_community: (64600, 7, 7)\n\
        \x20                    unicast [flb_node2_v4 23:48:31.708] (100) [AS64600i]\n\
        \tvia 198.18.0.12 on eth0\n\tBGP.next_hop: 198.18.0.12\n\tBGP.local_pref: 250\n";
    let p = bird_paths(text);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].next_hop, "198.18.0.11");
    assert_eq!(
        p[0].communities,
        ["65000:100", "65000:200"].map(String::from).into()
    );
    assert_eq!(
        p[0].large_communities,
        ["64600:7:7"].map(String::from).into()
    );
    assert_eq!(
        (p[1].next_hop.as_str(), p[1].local_pref),
        ("198.18.0.12", Some(250))
    );
}

#[test]
fn names_bird_protocols() {
    assert_eq!(bird_protocol("198.18.0.12"), "flb_node2_v4");
    assert_eq!(bird_protocol("fd00:18::13"), "flb_node3_v6");
    assert_eq!(node_addr("flb-node3", true), "fd00:18::13");
}
