/*
 * The vslab guest agent protocol: binary frames over a virtio-serial port, both directions.
 * (Mirrored in src/backend/vm/protocol.ts; change both together and bump AGENT_PROTOCOL.)
 *
 *   u32 length   bytes that follow this field (id + type + fields)
 *   u32 id       chosen by the host per request; replies carry the request's id
 *   u8  type     one of the values below
 *   fields       each: u32 length + bytes (all integers little-endian; numbers inside fields are decimal text)
 *
 * Host -> guest
 *   PING      ()                                   -> PONG (protocol, kernel release)
 *   RUN       (mode, ns, cwd, timeout_ms, stdin, envc, env[envc]..., argv...)
 *             mode "collect": -> EXIT (code, signal, timed_out, stdout, stderr)
 *             mode "stream":  -> STARTED (pid), OUTPUT (fd, data)*, EXIT (code, signal, timed_out, "", "")
 *             ns "" = the guest's initial namespace, "/path" = that file, otherwise /run/netns/<ns>
 *             A failure to enter the namespace, chdir or exec answers ERROR instead.
 *   STDIN     (data)           for a streamed RUN with the same id; empty data closes its stdin
 *   SIGNAL    (signo)          for a streamed RUN with the same id
 *   NETLINK   (ns, protocol, timeout_ms, request)  -> NLREPLY (all reply messages) | ERROR
 *             reads until every request sequence number got an NLMSG_ERROR (ack/error) or NLMSG_DONE
 *   FETCH     (path[, offset])                     -> CHUNK (data)* then END (size) | ERROR
 *             from byte `offset` (default 0) to the end; END counts the bytes sent (protocol 2)
 *   PUT       (path, mode_octal, data)             -> OK | ERROR
 *   POWEROFF  ()                                   -> OK, then the guest powers off
 * Guest -> host
 *   HELLO (protocol, kernel release) with id 0 once the agent has opened its port.
 */
#ifndef VSLAB_AGENT_PROTOCOL_H
#define VSLAB_AGENT_PROTOCOL_H

#define AGENT_PROTOCOL "2"
#define AGENT_PORT_NAME "vslab.agent"

enum {
  T_PING = 0x01,
  T_RUN = 0x02,
  T_STDIN = 0x03,
  T_SIGNAL = 0x04,
  T_NETLINK = 0x05,
  T_FETCH = 0x06,
  T_PUT = 0x07,
  T_POWEROFF = 0x08,

  T_HELLO = 0x80,
  T_PONG = 0x81,
  T_EXIT = 0x82,
  T_STARTED = 0x83,
  T_OUTPUT = 0x84,
  T_NLREPLY = 0x85,
  T_CHUNK = 0x86,
  T_END = 0x87,
  T_ERROR = 0x88,
  T_OK = 0x89,
};

#endif
