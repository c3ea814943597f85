// JSON Schema (draft-07) of a scheduler scenario: the input of `vslab predict` and of the exact
// scheduler suites. Structural rules live here; cross-field rules (names that must exist, address
// families that must match, flag/scheduler combinations) are checked in scenario.ts.

const name = { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,32}$' } as const;
const address = { type: 'string', minLength: 2, maxLength: 45 } as const;
const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const weight = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const threshold = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const forward = { enum: ['dr', 'nat', 'tun'] } as const;

const server = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'addr', 'port', 'weight'],
  properties: {
    name,
    addr: address,
    port,
    weight,
    upper: threshold,
    lower: threshold,
    forward,
  },
} as const;

const flow = {
  type: 'object',
  additionalProperties: false,
  required: ['client', 'cport'],
  properties: {
    client: address,
    cport: port,
    dst: address,
    dport: port,
    proto: { enum: ['tcp', 'udp'] },
    hold: { type: 'boolean' },
  },
} as const;

const generatedFlows = {
  type: 'object',
  additionalProperties: false,
  required: ['generate'],
  properties: {
    generate: {
      type: 'object',
      additionalProperties: false,
      required: ['count', 'seed', 'clients'],
      properties: {
        count: { type: 'integer', minimum: 1, maximum: 1000000 },
        seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
        clients: { type: 'string', description: 'client prefix, e.g. "198.18.64.0/18"' },
        cports: { type: 'array', items: port, minItems: 2, maxItems: 2 },
        dsts: { type: 'string', description: 'destination prefix for fwmark services (dh/lblc/lblcr)' },
        hold: { type: 'boolean' },
      },
    },
  },
} as const;

const persistence = {
  type: 'object',
  additionalProperties: false,
  properties: {
    timeout: { type: 'integer', minimum: 1, maximum: 2678400 },
    netmask: { type: ['string', 'integer'] },
  },
} as const;

const serviceCommon = {
  persistence,
  onePacket: { type: 'boolean' },
} as const;

const service = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['proto', 'vip', 'port'],
      properties: { proto: { enum: ['tcp', 'udp'] }, vip: address, port, ...serviceCommon },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['fwmark'],
      properties: {
        fwmark: { type: 'integer', minimum: 1, maximum: 4294967295 },
        vip: address,
        proto: { enum: ['tcp', 'udp'] },
        port,
        family: { enum: [4, 6] },
        ...serviceCommon,
      },
    },
  ],
} as const;

const event = {
  type: 'object',
  required: ['before', 'op'],
  properties: {
    before: { type: 'integer', minimum: 0 },
    op: { enum: ['edit', 'add', 'remove', 'close', 'release', 'hold', 'wait'] },
  },
  allOf: [
    {
      if: { properties: { op: { const: 'edit' } } },
      then: {
        additionalProperties: false,
        required: ['server'],
        properties: { before: {}, op: {}, server: name, weight, upper: threshold, lower: threshold },
      },
    },
    {
      if: { properties: { op: { const: 'add' } } },
      then: { additionalProperties: false, required: ['server'], properties: { before: {}, op: {}, server } },
    },
    {
      if: { properties: { op: { const: 'remove' } } },
      then: { additionalProperties: false, required: ['server'], properties: { before: {}, op: {}, server: name } },
    },
    {
      if: { properties: { op: { const: 'close' } } },
      then: { additionalProperties: false, required: ['flow'], properties: { before: {}, op: {}, flow: { type: 'integer', minimum: 0 } } },
    },
    {
      if: { properties: { op: { const: 'release' } } },
      then: { additionalProperties: false, properties: { before: {}, op: {} } },
    },
    {
      if: { properties: { op: { const: 'hold' } } },
      then: { additionalProperties: false, required: ['hold'], properties: { before: {}, op: {}, hold: { type: 'boolean' } } },
    },
    {
      if: { properties: { op: { const: 'wait' } } },
      then: { additionalProperties: false, required: ['seconds'], properties: { before: {}, op: {}, seconds: { type: 'number', exclusiveMinimum: 0, maximum: 604800 } } },
    },
  ],
} as const;

export const SCENARIO_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://vslab.invalid/schemas/scheduler-scenario.json',
  title: 'vslab scheduler scenario',
  type: 'object',
  additionalProperties: false,
  required: ['scheduler', 'service', 'servers', 'flows'],
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    scheduler: { enum: ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'twos', 'sh', 'dh', 'mh', 'lblc', 'lblcr'] },
    flags: {
      type: 'array',
      uniqueItems: true,
      items: { enum: ['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port', 'flag-1', 'flag-2', 'flag-3'] },
    },
    service,
    servers: { type: 'array', items: server },
    flows: { type: 'array', items: { anyOf: [flow, generatedFlows] } },
    hold: { type: 'boolean' },
    events: { type: 'array', items: event },
    sysctl: {
      type: 'object',
      additionalProperties: false,
      properties: {
        expire_quiescent_template: { enum: [0, 1] },
        conn_reuse_mode: { enum: [0, 1, 2, 3] },
        expire_nodest_conn: { enum: [0, 1] },
        lblc_expiration: { type: 'integer', minimum: 1 },
        lblcr_expiration: { type: 'integer', minimum: 1 },
      },
    },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
    timingMargin: { type: 'number', minimum: 0 },
    expect: { type: 'array', items: { type: ['string', 'null'] } },
  },
} as const;
