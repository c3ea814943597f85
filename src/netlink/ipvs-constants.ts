// Wire constants of the IPVS generic netlink family, from include/uapi/linux/ip_vs.h.
// Numbers only; the meaning of each attribute is described in ipvs-wire.ts where it is encoded.

export const IPVS_GENL_NAME = 'IPVS';
export const IPVS_GENL_VERSION = 1;

export const IPVS_CMD = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  NEW_DAEMON: 9,
  DEL_DAEMON: 10,
  GET_DAEMON: 11,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  SET_INFO: 14,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

export const IPVS_CMD_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(IPVS_CMD).map(([k, v]) => [v, k]),
);

export const IPVS_CMD_ATTR = {
  SERVICE: 1,
  DEST: 2,
  DAEMON: 3,
  TIMEOUT_TCP: 4,
  TIMEOUT_TCP_FIN: 5,
  TIMEOUT_UDP: 6,
} as const;

export const IPVS_SVC_ATTR = {
  AF: 1,
  PROTOCOL: 2,
  ADDR: 3,
  PORT: 4,
  FWMARK: 5,
  SCHED_NAME: 6,
  FLAGS: 7,
  TIMEOUT: 8,
  NETMASK: 9,
  STATS: 10,
  PE_NAME: 11,
  STATS64: 12,
} as const;

export const IPVS_DEST_ATTR = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  PERSIST_CONNS: 9,
  STATS: 10,
  ADDR_FAMILY: 11,
  STATS64: 12,
  TUN_TYPE: 13,
  TUN_PORT: 14,
  TUN_FLAGS: 15,
} as const;

export const IPVS_DAEMON_ATTR = {
  STATE: 1,
  MCAST_IFN: 2,
  SYNC_ID: 3,
  SYNC_MAXLEN: 4,
  MCAST_GROUP: 5,
  MCAST_GROUP6: 6,
  MCAST_PORT: 7,
  MCAST_TTL: 8,
} as const;

export const IPVS_STATS_ATTR = {
  CONNS: 1,
  INPKTS: 2,
  OUTPKTS: 3,
  INBYTES: 4,
  OUTBYTES: 5,
  CPS: 6,
  INPPS: 7,
  OUTPPS: 8,
  INBPS: 9,
  OUTBPS: 10,
  PAD: 11,
} as const;

export const IPVS_INFO_ATTR = {
  VERSION: 1,
  CONN_TAB_SIZE: 2,
} as const;

/** Service flags (IP_VS_SVC_F_*). */
export const SVC_F = {
  PERSISTENT: 0x0001,
  HASHED: 0x0002,
  ONEPACKET: 0x0004,
  SCHED1: 0x0008,
  SCHED2: 0x0010,
  SCHED3: 0x0020,
} as const;

/** Destination flags as the kernel keeps them (IP_VS_DEST_F_*; not sent over netlink). */
export const DEST_F = { AVAILABLE: 0x0001, OVERLOAD: 0x0002 } as const;

/** Forwarding methods (IP_VS_CONN_F_FWD_MASK values). */
export const CONN_F = {
  FWD_MASK: 0x0007,
  MASQ: 0,
  LOCALNODE: 1,
  TUNNEL: 2,
  DROUTE: 3,
  BYPASS: 4,
} as const;

export const TUNNEL_TYPE = { IPIP: 0, GUE: 1, GRE: 2 } as const;
export const TUNNEL_FLAG = { NOCSUM: 0, CSUM: 1, REMCSUM: 2 } as const;

export const DAEMON_STATE = { NONE: 0, MASTER: 1, BACKUP: 2 } as const;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO = { IP: 0, TCP: 6, UDP: 17, SCTP: 132 } as const;

export const IP_VS_SCHEDNAME_MAXLEN = 16;
export const IP_VS_PENAME_MAXLEN = 16;
export const IP_VS_IFNAME_MAXLEN = 16;
