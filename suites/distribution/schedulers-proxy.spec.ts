// The distribution suite through a proxy (haproxy, nginx): suites/distribution/common.ts.
import { distributionTests } from './common';
import { LABS } from './labs';
import { test } from '../fixtures';

distributionTests(LABS.proxy, (title, details, body) => test(title, details, body));
