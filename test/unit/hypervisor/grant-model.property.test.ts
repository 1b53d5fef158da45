// Bad inputs tried: random sequences of grant / map (RO, RW, host) / unmap / copy / end access / retry / destroy across three local domains, including refs never granted or already ended, RW maps of RO grants, maps past the quota and maps of destroyed (zombie) granters.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DOMID_SELF } from '../../../src/abi/event-channel.js';
import {
  GNTCOPY_source_gref, GNTST_bad_domain, GNTST_general_error, GNTST_no_space, GNTST_okay, GTF_permit_access,
  GTF_readonly, GTF_reading, GTF_writing,
} from '../../../src/abi/grant-table.js';
import type { DomainHandle, EmulatedPlatform, GrantMapping } from '../../../src/hypervisor/index.js';
import { guest, newMachine, pages } from './helpers.js';

const N = 3;
const PAGES = 4;
const MAX_MAPS = 3;
const HOSTS = 3;

type Op =
  | { t: 'grant'; i: number; j: number; page: number; ro: boolean }
  | { t: 'map'; j: number; pick: number; ro: boolean; host: boolean }
  | { t: 'unmap'; pick: number }
  | { t: 'copy'; j: number; pick: number }
  | { t: 'end'; pick: number }
  | { t: 'retry'; i: number }
  | { t: 'destroy'; i: number };

const idx = (n: number) => fc.integer({ min: 0, max: n - 1 });
const pick = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('grant' as const), i: idx(N), j: idx(N), page: idx(PAGES), ro: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('map' as const), j: idx(N), pick, ro: fc.boolean(), host: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('unmap' as const), pick }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('copy' as const), j: idx(N), pick }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('end' as const), pick }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('retry' as const), i: idx(N) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('destroy' as const), i: idx(N) }) },
);

interface Grant {
  readonly i: number;
  readonly j: number;
  readonly ref: number;
  readonly ro: boolean;
  readonly tag: number;
  /** endAccess returned false: still in the table until a retry ends it. */
  deferred: boolean;
}

interface Live {
  readonly j: number;
  readonly g: Grant;
  readonly ro: boolean;
  readonly mapping: GrantMapping;
  readonly host: number | undefined;
}

describe('grant model (property)', () => {
  it('random grant/map/unmap/end/destroy sequences keep the hypervisor consistent and leak nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), async (ops) => {
        const m = newMachine(4);
        try {
          const base = m.accounting();
          const hs: DomainHandle[] = [];
          const ps: EmulatedPlatform[] = [];
          const gfns: Int32Array[] = [];
          const hostFree: number[][] = [];
          for (let i = 0; i < N; i++) {
            const h = await guest(m, `d${i}`, { limits: { maxMaps: MAX_MAPS, maxGrantFrames: 1 } });
            hs.push(h);
            ps.push(h.platform);
            const g = pages(h.platform, PAGES);
            g.forEach((gfn, k) => h.platform.memory.page(gfn)!.fill(16 * i + k + 1));
            gfns.push(g);
            const b = h.platform.memory.allocBallooned(HOSTS);
            if (typeof b === 'number') throw new Error('balloon');
            hostFree.push(Array.from(b));
          }
          const domid = (i: number): number => hs[i]!.domid;
          const alive = new Set<number>(Array.from({ length: N }, (_, i) => i));
          /** Current table contents per granter: ref -> grant. */
          const table: Map<number, Grant>[] = Array.from({ length: N }, () => new Map<number, Grant>());
          const grants: Grant[] = [];
          let lives: Live[] = [];

          const check = (): void => {
            const acc = m.accounting();
            const byId = new Map(acc.domains.map((d) => [d.domid, d]));
            let held = 0;
            let ofMine = 0;
            for (const d of acc.domains) {
              held += d.mapsHeld;
              ofMine += d.mapsOfMine;
            }
            expect(held).toBe(ofMine);
            for (let i = 0; i < N; i++) {
              const d = byId.get(domid(i));
              const mine = lives.filter((l) => l.g.i === i);
              const pinnedRefs = new Set(mine.map((l) => l.g.ref));
              if (!alive.has(i)) {
                // Destroyed: a zombie iff others still map its grants.
                if (mine.length === 0) expect(d).toBeUndefined();
                else expect(d).toMatchObject({ state: 'zombie', mapsOfMine: mine.length, grantEntriesPinned: pinnedRefs.size, mapsHeld: 0, pages: 0 });
                continue;
              }
              expect(d).toMatchObject({
                state: 'running',
                mapsHeld: lives.filter((l) => l.j === i).length,
                mapsOfMine: mine.length,
                grantEntriesPinned: pinnedRefs.size,
                grantEntriesInUse: table[i]!.size,
              });
              for (const g of table[i]!.values()) {
                const on = mine.filter((l) => l.g === g);
                const want = GTF_permit_access | (g.ro ? GTF_readonly : 0) | (on.length > 0 ? GTF_reading : 0) | (on.some((l) => !l.ro) ? GTF_writing : 0);
                expect(ps[i]!.grants.flags(g.ref)).toBe(want);
              }
              expect(ps[i]!.grants.deferredCount).toBe([...table[i]!.values()].filter((g) => g.deferred).length);
            }
            for (const l of lives) {
              expect(l.mapping.page(0)[0]).toBe(l.g.tag);
              if (l.host !== undefined) expect(ps[l.j]!.memory.page(l.host)![0]).toBe(l.g.tag);
            }
          };

          /**
           * The grant a map/copy/end `pick` designates: mostly a current grant to `j` (when given),
           * sometimes any current or past grant, or a ref that was never granted.
           */
          const choose = (n: number, j?: number): { i: number; ref: number } => {
            if (grants.length === 0 || n % 7 === 0) return { i: n % N, ref: 8 + (n % 20) };
            const current = table.flatMap((t) => [...t.values()]).filter((g) => j === undefined || g.j === j);
            const from = n % 7 === 1 || current.length === 0 ? grants : current;
            const g = from[Math.floor(n / 7) % from.length]!;
            return { i: g.i, ref: g.ref };
          };

          const doGrant = (i: number, j: number, page: number, ro: boolean): void => {
            const ref = ps[i]!.grants.grantAccess(domid(j), gfns[i]![page]!, ro);
            expect(ref).toBeGreaterThanOrEqual(8);
            expect(table[i]!.has(ref)).toBe(false);
            const g: Grant = { i, j, ref, ro, tag: 16 * i + page + 1, deferred: false };
            table[i]!.set(ref, g);
            grants.push(g);
          };
          // Start with a grant RW to the next domain and RO to the one after.
          for (let i = 0; i < N; i++) {
            doGrant(i, (i + 1) % N, 0, false);
            doGrant(i, (i + 2) % N, 1, true);
          }
          check();

          for (const op of ops) {
            switch (op.t) {
              case 'grant': {
                if (alive.has(op.i)) doGrant(op.i, op.j, op.page, op.ro);
                break;
              }
              case 'map': {
                if (!alive.has(op.j)) break;
                const { i, ref } = choose(op.pick, op.j);
                const g = table[i]!.get(ref);
                const host = op.host ? hostFree[op.j]!.pop() : undefined;
                const r = ps[op.j]!.maps.map(domid(i), [ref], op.ro, host === undefined ? undefined : [host]);
                let want: number = GNTST_okay;
                if (!alive.has(i)) want = GNTST_bad_domain;
                else if (lives.filter((l) => l.j === op.j).length >= MAX_MAPS) want = GNTST_no_space;
                else if (!g || g.j !== op.j || (!op.ro && g.ro)) want = GNTST_general_error;
                expect(r.ok ? GNTST_okay : r.status).toBe(want);
                if (r.ok && g) lives.push({ j: op.j, g, ro: op.ro, mapping: r.mapping, host });
                else if (host !== undefined) hostFree[op.j]!.push(host);
                break;
              }
              case 'unmap': {
                if (lives.length === 0) break;
                const l = lives[op.pick % lives.length]!;
                expect(ps[l.j]!.maps.unmap(l.mapping)).toBe(GNTST_okay);
                lives = lives.filter((x) => x !== l);
                if (l.host !== undefined) {
                  expect(ps[l.j]!.memory.page(l.host)).toBeUndefined();
                  hostFree[l.j]!.push(l.host);
                }
                break;
              }
              case 'copy': {
                if (!alive.has(op.j)) break;
                const { i, ref } = choose(op.pick, op.j);
                const g = table[i]!.get(ref);
                const dest = gfns[op.j]![0]!;
                const st = ps[op.j]!.maps.copy([{ source: { ref, domid: domid(i), offset: 0 }, dest: { ref: dest, domid: DOMID_SELF, offset: 4095 }, len: 1, flags: GNTCOPY_source_gref }]);
                let want: number = GNTST_okay;
                if (!alive.has(i)) want = GNTST_bad_domain;
                else if (!g || g.j !== op.j) want = GNTST_general_error;
                expect(st[0]).toBe(want);
                if (want === GNTST_okay) expect(ps[op.j]!.memory.page(dest)![4095]).toBe(g!.tag);
                break;
              }
              case 'end': {
                const { i, ref } = choose(op.pick);
                const g = table[i]!.get(ref);
                if (!alive.has(i) || !g || g.deferred) break;
                const mapped = lives.some((l) => l.g === g);
                expect(ps[i]!.grants.endAccess(ref)).toBe(!mapped);
                if (mapped) g.deferred = true;
                else table[i]!.delete(ref);
                break;
              }
              case 'retry': {
                if (!alive.has(op.i)) break;
                const ready = [...table[op.i]!.values()].filter((g) => g.deferred && !lives.some((l) => l.g === g));
                expect(ps[op.i]!.grants.retryDeferred(true)).toBe(ready.length);
                for (const g of ready) table[op.i]!.delete(g.ref);
                break;
              }
              case 'destroy': {
                if (!alive.has(op.i)) break;
                await m.destroyDomain(domid(op.i));
                alive.delete(op.i);
                lives = lives.filter((l) => l.j !== op.i);
                break;
              }
            }
            check();
          }
          for (let i = 0; i < N; i++) if (alive.has(i)) await m.destroyDomain(domid(i));
          expect(m.accounting().domains.map((d) => d.domid)).toEqual([0]);
          expect(m.leaks(base)).toEqual([]);
        } finally {
          await m.close();
        }
      }),
      { numRuns: 50 },
    );
  });
});
