// LINKTYPE_* values of pcap/pcapng files that the decoders understand.
export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

export function linkTypeName(t: number): string {
  switch (t) {
    case LINKTYPE_NULL: return 'NULL';
    case LINKTYPE_ETHERNET: return 'EN10MB';
    case LINKTYPE_RAW: case 12: case 14: return 'RAW';
    case LINKTYPE_LOOP: return 'LOOP';
    case LINKTYPE_LINUX_SLL: return 'LINUX_SLL';
    case LINKTYPE_IPV4: return 'IPV4';
    case LINKTYPE_IPV6: return 'IPV6';
    case LINKTYPE_LINUX_SLL2: return 'LINUX_SLL2';
    default: return `linktype ${t}`;
  }
}
