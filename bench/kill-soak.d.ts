// Types of bench/kill-soak.js for the short soak in tests/hostile/kill-soak.spec.ts.
export type Leaks = Record<string, number>;
export interface BackendSoak { backend: string; runs: number; killedUp: number; killedDown: number; finished: number; upMs: number; downMs: number; leaks: Leaks; examples: string[] }
export interface ConcurrentSoak { backend: string; rounds: number; failures: number; leaks: Leaks; examples: string[] }
export interface SoakReport { offered: string[]; backends: BackendSoak[]; unavailable: string[]; concurrent?: ConcurrentSoak }
export interface SoakOptions { runs?: number; rounds?: number; prefix?: string; backends?: string[]; concurrentBackend?: string; log?: (line: string) => void }
export const KINDS: string[];
export function soak(opts?: SoakOptions): Promise<SoakReport>;
export function print(report: SoakReport): string;
export function leftovers(prefix: string, exact?: boolean): Leaks;
export function offeredBackends(): string[];
