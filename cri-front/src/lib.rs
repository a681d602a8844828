//! # crius-cri-front
//! criusd: the CRI v1 server (being written).
