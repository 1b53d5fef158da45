/**
 * A commit can never do what the same requests outside a transaction could not: operations are
 * re-checked against the live tree before they are applied, and a transaction whose view went
 * stale (device directory removed, owner changed, node replaced) gets EAGAIN; retried, it gets
 * the error the plain request would. Also: one session's failing event sink does not affect the
 * writer or other watchers, and a released domain's ACL entries go with it.
 */
import { describe, expect, it } from 'vitest';
import { code, enc, newStore, readStr, val } from './helpers.js';

function device(dom0: ReturnType<typeof newStore>['dom0'], d: number): string {
  const fe = `/local/domain/${d}/device/vdispl/0`;
  val(dom0.write(`${fe}/state`, enc('1')));
  val(dom0.setPerms('/local/domain/' + d, [{ domid: 0, access: 'n' }, { domid: d, access: 'r' }]));
  val(dom0.setPerms(`/local/domain/${d}/device`, [{ domid: 0, access: 'n' }, { domid: d, access: 'r' }]));
  val(dom0.setPerms(`/local/domain/${d}/device/vdispl`, [{ domid: 0, access: 'n' }, { domid: d, access: 'r' }]));
  val(dom0.setPerms(fe, [{ domid: d, access: 'n' }, { domid: 0, access: 'r' }]));
  val(dom0.setPerms(`${fe}/state`, [{ domid: d, access: 'n' }, { domid: 0, access: 'r' }]));
  return fe;
}

describe('commit re-checks', () => {
  it('a guest cannot re-create a device directory the toolstack removed during its transaction', () => {
    const { store, dom0 } = newStore();
    const fe = device(dom0, 5);
    const g = store.connect({ domid: 5 });
    const t = val(g.transactionStart());
    expect(code(g.write(`${fe}/0/req-ring-ref`, enc('8'), t))).toBe('OK');
    expect(code(g.write(`${fe}/state`, enc('3'), t))).toBe('OK');
    val(dom0.rm(fe));
    const nodes = store.stats.nodes;
    expect(code(g.transactionEnd(t, true))).toBe('EAGAIN');
    expect(store.stats.nodes).toBe(nodes);
    expect(readStr(dom0, fe)).toBe('!ENOENT');
    // Retried, the same write fails as it would outside a transaction.
    const t2 = val(g.transactionStart());
    expect(code(g.write(`${fe}/state`, enc('3'), t2))).toBe('EACCES');
    expect(code(g.write(`${fe}/state`, enc('3')))).toBe('EACCES');
  });

  it('a guest cannot take back ownership dom0 took during its transaction', () => {
    const { store, dom0 } = newStore();
    const fe = device(dom0, 5);
    const g = store.connect({ domid: 5 });
    const t = val(g.transactionStart());
    expect(code(g.setPerms(`${fe}/state`, [{ domid: 5, access: 'n' }, { domid: 7, access: 'b' }], t))).toBe('OK');
    val(dom0.setPerms(`${fe}/state`, [{ domid: 0, access: 'r' }]));
    expect(code(g.transactionEnd(t, true))).toBe('EAGAIN');
    expect(val(dom0.getPerms(`${fe}/state`))).toEqual([{ domid: 0, access: 'r' }]);
  });

  it('a transaction whose writes do not depend on changed nodes still commits', () => {
    const { store, dom0 } = newStore();
    const fe = device(dom0, 5);
    const g = store.connect({ domid: 5 });
    const t = val(g.transactionStart());
    expect(code(g.write(`${fe}/0/req-ring-ref`, enc('8'), t))).toBe('OK');
    val(dom0.write('/elsewhere', enc('x')));
    val(dom0.write(`${fe}/backend-id`, enc('0'))); // a sibling, not read by the transaction
    expect(code(g.transactionEnd(t, true))).toBe('OK');
    expect(readStr(dom0, `${fe}/0/req-ring-ref`)).toBe('8');
    expect(val(dom0.getPerms(`${fe}/0/req-ring-ref`))[0]).toEqual({ domid: 5, access: 'n' });
  });
});

describe('isolation of event sinks and released domains', () => {
  it('a session whose event sink throws does not fail the writer or starve other watchers', () => {
    const { store, dom0 } = newStore();
    const bad = store.connect({ domid: 0, privileged: true, onWatchEvent: () => { throw new Error('sink broke'); } });
    const seen: string[] = [];
    const good = store.connect({ domid: 0, privileged: true, onWatchEvent: (p) => seen.push(p) });
    val(bad.watch('/w', 'a'));
    val(good.watch('/w', 'b'));
    expect(code(dom0.write('/w/x', enc('1')))).toBe('OK');
    expect(seen).toEqual(['/w/x']);
  });

  it('a released domain leaves no entries in other nodes\u2019 permissions', () => {
    const { store, dom0 } = newStore();
    val(dom0.write('/shared', enc('v')));
    val(dom0.setPerms('/shared', [{ domid: 0, access: 'n' }, { domid: 5, access: 'b' }, { domid: 6, access: 'r' }]));
    store.domainReleased(5);
    expect(val(dom0.getPerms('/shared'))).toEqual([{ domid: 0, access: 'n' }, { domid: 6, access: 'r' }]);
    // A new domain 5 cannot read it.
    const g = store.connect({ domid: 5 });
    expect(readStr(g, '/shared')).toBe('!EACCES');
  });

  it('values are copied in and out: callers cannot change the store through their buffers', () => {
    const { dom0 } = newStore();
    const buf = enc('abc');
    val(dom0.write('/v', buf));
    buf[0] = 0x7a;
    const out = val(dom0.read('/v'));
    out[1] = 0x7a;
    expect(readStr(dom0, '/v')).toBe('abc');
  });
});
