//! Networks of world B: cloud regions TPPs egress from, consumer ISPs customers sit behind
//! (their address travels in `x-fapi-customer-ip-address`), and the hosting/proxy networks
//! attackers rent. Prefixes are plausible /16s of the named operators; addresses inside them are
//! drawn at random, so /24s repeat only where a client really reuses an address.

use std::net::Ipv4Addr;
use std::rc::Rc;

use rand::Rng;

/// An operator's network: ASN, country the edge geolocates it to, some /16s it announces.
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub asn: u32,
    pub country: &'static str,
    pub prefixes: &'static [[u8; 2]],
}

macro_rules! net {
    ($name:ident, $asn:expr, $cc:expr, [$([$a:expr, $b:expr]),+ $(,)?]) => {
        pub const $name: Net = Net { asn: $asn, country: $cc, prefixes: &[$([$a, $b]),+] };
    };
}

// Cloud regions (TPP egress).
net!(
    AWS_LONDON,
    16509,
    "GB",
    [[3, 8], [3, 9], [18, 130], [18, 132], [35, 176], [52, 56]]
);
net!(
    AWS_DUBLIN,
    16509,
    "IE",
    [[34, 240], [34, 241], [52, 208], [54, 72]]
);
net!(AWS_VIRGINIA, 14618, "US", [[3, 80], [44, 192], [54, 85]]);
net!(GCP_LONDON, 396982, "GB", [[34, 89], [35, 189], [35, 242]]);
net!(GCP_BELGIUM, 396982, "BE", [[34, 76], [35, 195]]);
net!(
    AZURE_UKSOUTH,
    8075,
    "GB",
    [[51, 104], [51, 105], [51, 140], [20, 26]]
);
net!(AZURE_WESTEU, 8075, "NL", [[20, 50], [20, 76], [52, 174]]);
net!(OVH_FR, 16276, "FR", [[51, 68], [51, 75], [54, 36]]);
net!(DO_LONDON, 14061, "GB", [[178, 62], [46, 101], [167, 99]]);
// Hosting and VPN networks attackers favour (some legitimate TPPs live there too).
net!(
    DO_AMSTERDAM,
    14061,
    "NL",
    [[188, 166], [146, 190], [165, 22]]
);
net!(HETZNER_DE, 24940, "DE", [[88, 198], [78, 46], [116, 202]]);
net!(HETZNER_FI, 24940, "FI", [[95, 216], [65, 108], [135, 181]]);
net!(VULTR_NL, 20473, "NL", [[45, 32], [95, 179], [136, 244]]);
net!(M247_RO, 9009, "RO", [[89, 46], [146, 70], [185, 220]]);
net!(LINODE_US, 63949, "US", [[45, 79], [172, 104], [139, 162]]);
// UK consumer ISPs (broadband and mobile).
net!(
    BT,
    2856,
    "GB",
    [[86, 128], [86, 150], [81, 129], [109, 144]]
);
net!(VIRGIN, 5089, "GB", [[82, 0], [82, 1], [86, 0], [62, 31]]);
net!(SKY, 5607, "GB", [[2, 96], [2, 97], [90, 208], [5, 80]]);
net!(TALKTALK, 13285, "GB", [[92, 24], [78, 144], [89, 240]]);
net!(EE, 12576, "GB", [[31, 94], [31, 95], [188, 28]]);
net!(VODAFONE_UK, 25135, "GB", [[5, 64], [5, 65], [5, 68]]);
net!(THREE_UK, 206067, "GB", [[92, 40], [92, 41], [188, 29]]);
// Consumer ISPs abroad (holidays, expats, residential proxies).
net!(TELEFONICA_ES, 3352, "ES", [[83, 32], [88, 0], [79, 144]]);
net!(ORANGE_FR, 3215, "FR", [[90, 0], [90, 1], [86, 240]]);
net!(MEO_PT, 3243, "PT", [[85, 240], [85, 241]]);
net!(TIM_IT, 3269, "IT", [[79, 20], [93, 40]]);
net!(COMCAST_US, 7922, "US", [[73, 0], [73, 1], [98, 200]]);
net!(OTE_GR, 6799, "GR", [[79, 166], [94, 65]]);
net!(ETISALAT_AE, 5384, "AE", [[94, 200], [94, 201]]);
net!(EIR_IE, 5466, "IE", [[86, 40], [86, 44]]);
net!(DTAG_DE, 3320, "DE", [[79, 192], [87, 160]]);
net!(CLARO_BR, 28573, "BR", [[177, 32], [189, 100]]);
net!(VIETTEL_VN, 7552, "VN", [[27, 72], [116, 96]]);
net!(AIRTEL_IN, 24560, "IN", [[122, 160], [59, 88]]);
net!(MTN_NG, 29465, "NG", [[102, 89], [105, 112]]);
net!(RCS_RO, 8708, "RO", [[86, 120], [79, 112]]);
net!(TELKOM_ID, 7713, "ID", [[36, 64], [180, 244]]);

pub const UK_BROADBAND: [Net; 4] = [BT, VIRGIN, SKY, TALKTALK];
pub const UK_MOBILE: [Net; 3] = [EE, VODAFONE_UK, THREE_UK];
pub const HOLIDAY: [Net; 8] = [
    TELEFONICA_ES,
    ORANGE_FR,
    MEO_PT,
    TIM_IT,
    COMCAST_US,
    OTE_GR,
    ETISALAT_AE,
    EIR_IE,
];
pub const HOSTING: [Net; 7] = [
    DO_AMSTERDAM,
    HETZNER_DE,
    HETZNER_FI,
    VULTR_NL,
    M247_RO,
    LINODE_US,
    AWS_VIRGINIA,
];
pub const PROXY_RESIDENTIAL: [Net; 9] = [
    CLARO_BR, VIETTEL_VN, AIRTEL_IN, MTN_NG, RCS_RO, TELKOM_ID, COMCAST_US, DTAG_DE, BT,
];

/// A random address inside a network.
pub fn addr<R: Rng>(rng: &mut R, net: &Net) -> Ipv4Addr {
    let p = pick(rng, net.prefixes).copied().unwrap_or([10, 0]);
    Ipv4Addr::new(p[0], p[1], rng.gen_range(0..=255), rng.gen_range(1..=254))
}

/// Uniform choice from a slice (None when empty).
pub fn pick<'a, R: Rng, T>(rng: &mut R, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(rng.gen_range(0..items.len()))
    }
}

/// Where a request comes from, as the edge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub ip: Ipv4Addr,
    pub asn: u32,
    pub country: &'static str,
}

impl Egress {
    pub fn random<R: Rng>(rng: &mut R, net: &Net) -> Self {
        Egress {
            ip: addr(rng, net),
            asn: net.asn,
            country: net.country,
        }
    }
}

/// `n` NAT/egress addresses of a TPP in one network.
pub fn nat_pool<R: Rng>(rng: &mut R, net: &Net, n: usize) -> Vec<Egress> {
    (0..n.max(1)).map(|_| Egress::random(rng, net)).collect()
}

/// A TPP's egress over time: phases of address pools. When two phases overlap (a migration),
/// traffic moves from the old pool to the new one linearly across the overlap.
#[derive(Debug, Clone, Default)]
pub struct NetPlan {
    /// (from, to, overlap with the previous phase, pool)
    phases: Vec<(u64, u64, u64, Vec<Egress>)>,
}

impl NetPlan {
    pub fn fixed(pool: Vec<Egress>) -> Self {
        NetPlan {
            phases: vec![(0, u64::MAX, 1, pool)],
        }
    }

    /// Move to `pool` from `from`, overlapping with the current pool for `overlap` ms.
    pub fn migrate(&mut self, from: u64, overlap: u64, pool: Vec<Egress>) {
        if let Some(last) = self.phases.last_mut() {
            last.1 = from.saturating_add(overlap);
        }
        self.phases.push((from, u64::MAX, overlap.max(1), pool));
    }

    pub fn pick<R: Rng>(&self, rng: &mut R, t: u64) -> Egress {
        let mut chosen: Option<&Vec<Egress>> = None;
        for (from, to, overlap, pool) in &self.phases {
            if t < *from || t >= *to {
                continue;
            }
            if chosen.is_none() {
                chosen = Some(pool);
            } else {
                let p = (t - from) as f64 / *overlap as f64;
                if rng.gen_bool(p.clamp(0.0, 1.0)) {
                    chosen = Some(pool);
                }
            }
        }
        let pool = chosen.or_else(|| self.phases.first().map(|p| &p.3));
        pool.and_then(|p| pick(rng, p).copied()).unwrap_or(Egress {
            ip: Ipv4Addr::new(192, 0, 2, 1),
            asn: 64_496,
            country: "GB",
        })
    }
}

/// A User-Agent over time: versions rolling out gradually (old and new interleave during the
/// ramp, as pods are replaced).
#[derive(Debug, Clone)]
pub struct UaPlan {
    /// (rollout start, ramp length, UA); first entry is the initial version.
    versions: Vec<(u64, u64, Option<Rc<str>>)>,
}

impl UaPlan {
    pub fn fixed(ua: Option<&str>) -> Self {
        UaPlan {
            versions: vec![(0, 1, ua.map(Rc::from))],
        }
    }

    pub fn rollout(mut self, from: u64, ramp: u64, ua: &str) -> Self {
        self.versions.push((from, ramp.max(1), Some(Rc::from(ua))));
        self
    }

    pub fn pick<R: Rng>(&self, rng: &mut R, t: u64) -> Option<Rc<str>> {
        for (from, ramp, ua) in self.versions.iter().rev() {
            if t < *from {
                continue;
            }
            let p = ((t - from) as f64 / *ramp as f64).min(1.0);
            if *from == 0 || rng.gen_bool(p) {
                return ua.clone();
            }
        }
        self.versions.first().and_then(|v| v.2.clone())
    }

    /// The UA in use at `t` by most requests.
    pub fn current(&self, t: u64) -> Option<Rc<str>> {
        self.versions
            .iter()
            .rev()
            .find(|(from, ramp, _)| *from == 0 || t >= from.saturating_add(*ramp / 2))
            .and_then(|v| v.2.clone())
    }
}
