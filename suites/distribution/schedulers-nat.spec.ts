// The distribution suite over NAT (nftables, kernel IPVS, keepalived, adapters): suites/distribution/common.ts.
import { distributionTests } from './common';
import { LABS } from './labs';
import { test } from '../fixtures';

distributionTests(LABS.nat, (title, details, body) => test(title, details, body));
