//! Runnable scenarios for the ALTO virtual tracker: the local multi-PID swarm, a head
//! failover, a third-party client joining. Later issues add them here.
