// The smallest lab the topology error tests start from: a client, a director, one real server, two segments.
export function smallTopology(name: string): string {
  return `name: ${name}
nodes:
  c1: { role: client }
  d1: { role: director }
  rs1: { role: real-server }
segments:
  front: { ipv4: 198.18.0.0/24, members: [c1, d1] }
  back: { ipv4: 198.18.1.0/24, members: [d1, rs1] }
`;
}
