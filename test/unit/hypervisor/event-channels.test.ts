// Bad inputs tried: ports 0 / negative / fractional / beyond maxPorts / closed / already bound / accepting another domain, unknown and destroyed domains, unprivileged status and alloc for others, the port quota, throwing handlers, masked ports, sends on unbound ports.
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import { DOMID_SELF, EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound } from '../../../src/abi/event-channel.js';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import type { EmulatedPlatform, Machine, MachineAccounting } from '../../../src/hypervisor/index.js';
import { acct, guest, newMachine } from './helpers.js';

const { EINVAL, ENOSPC, EPERM, ESRCH } = XEN_ERRNO;

function port(x: number): number {
  if (x <= 0) throw new Error(`expected a port, got ${x}`);
  return x;
}

describe('event channels', () => {
  let m: Machine;
  let base: MachineAccounting;
  let a: EmulatedPlatform;
  let b: EmulatedPlatform;
  let c: EmulatedPlatform;
  let A: number;
  let B: number;
  let C: number;
  const errors: number[] = [];

  beforeEach(async () => {
    m = newMachine(16);
    base = m.accounting();
    errors.length = 0;
    const onError = (_e: unknown, p: number): void => {
      errors.push(p);
    };
    const ha = await guest(m, 'a', { limits: { maxPorts: 8 } });
    const hb = await guest(m, 'b', { platform: { onError } });
    const hc = await guest(m, 'c');
    [a, b, c] = [ha.platform, hb.platform, hc.platform];
    [A, B, C] = [ha.domid, hb.domid, hc.domid];
  });

  afterEach(async () => {
    for (const d of [A, B, C]) if (m.handles.has(d)) await m.destroyDomain(d);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  /** a allocates, b binds; both have handlers counting calls. Drains the bind's initial event. */
  function connect(): { pa: number; pb: number; onA: Mock<(port: number) => void>; onB: Mock<(port: number) => void> } {
    const pa = port(a.events.allocUnbound(B));
    const pb = port(b.events.bindInterdomain(A, pa));
    const onA = vi.fn<(port: number) => void>();
    const onB = vi.fn<(port: number) => void>();
    a.events.on(pa, onA);
    b.events.on(pb, onB);
    b.poll();
    a.poll();
    onA.mockClear();
    onB.mockClear();
    return { pa, pb, onA, onB };
  }

  it('alloc_unbound, bind_interdomain, send both ways, status', () => {
    const pa = port(a.events.allocUnbound(B));
    expect(pa).toBe(1);
    expect(a.events.status(pa)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: B, remotePort: 0, vcpu: 0 });
    expect(acct(m, A).ports).toBe(1);
    // Sending on an unbound port is accepted and goes nowhere.
    expect(a.events.notify(pa)).toBe(0);
    const pb = port(b.events.bindInterdomain(A, pa));
    expect(acct(m, B).ports).toBe(1);
    expect(acct(m, A).ports).toBe(1);
    expect(a.events.status(pa)).toEqual({ status: EVTCHNSTAT_interdomain, remoteDom: B, remotePort: pb, vcpu: 0 });
    expect(b.events.status(pb)).toEqual({ status: EVTCHNSTAT_interdomain, remoteDom: A, remotePort: pa, vcpu: 0 });
    const onA = vi.fn();
    const onB = vi.fn();
    a.events.on(pa, onA);
    b.events.on(pb, onB);
    // The new local port starts pending (the peer may have signalled before the bind).
    expect(b.poll()).toBe(1);
    expect(onB).toHaveBeenCalledWith(pb);
    expect(a.poll()).toBe(0); // the unbound-time send was dropped
    expect(a.events.notify(pa)).toBe(0);
    expect(b.poll()).toBe(1);
    expect(onB).toHaveBeenCalledTimes(2);
    expect(b.events.notify(pb)).toBe(0);
    expect(a.poll()).toBe(1);
    expect(onA).toHaveBeenCalledWith(pa);
    expect(b.poll()).toBe(0);
    expect(a.events.close(pa)).toBe(0);
    expect(b.events.close(pb)).toBe(0);
    expect(acct(m, A).ports).toBe(0);
    expect(acct(m, B).ports).toBe(0);
  });

  it('-EINVAL for bad or closed ports in every operation', () => {
    const { pa, pb } = connect();
    for (const bad of [0, -1, 1.5, NaN, 8, 9999]) {
      expect(a.events.notify(bad)).toBe(-EINVAL);
      expect(a.events.close(bad)).toBe(-EINVAL);
      expect(a.events.status(bad)).toBe(-EINVAL);
      expect(a.events.mask(bad)).toBe(-EINVAL);
      expect(a.events.unmask(bad)).toBe(-EINVAL);
      expect(b.events.bindInterdomain(A, bad)).toBe(-EINVAL);
    }
    // A port in range that was never opened.
    const closed = 5;
    expect(a.events.status(closed)).toEqual({ status: EVTCHNSTAT_closed, remoteDom: 0, remotePort: 0, vcpu: 0 });
    expect(a.events.notify(closed)).toBe(-EINVAL);
    expect(a.events.close(closed)).toBe(-EINVAL);
    expect(b.events.bindInterdomain(A, closed)).toBe(-EINVAL);
    // Binding a port that is already bound (interdomain), or bound to us.
    expect(c.events.bindInterdomain(A, pa)).toBe(-EINVAL);
    expect(b.events.bindInterdomain(A, pa)).toBe(-EINVAL);
    // Double close.
    expect(b.events.close(pb)).toBe(0);
    expect(b.events.close(pb)).toBe(-EINVAL);
    expect(b.events.notify(pb)).toBe(-EINVAL);
    expect(acct(m, B).ports).toBe(0);
    expect(a.events.close(pa)).toBe(0);
  });

  it('binding a port that accepts another domain -> -EINVAL; unknown or destroyed domain -> -ESRCH', async () => {
    const forC = port(a.events.allocUnbound(C));
    expect(b.events.bindInterdomain(A, forC)).toBe(-EINVAL);
    expect(b.events.bindInterdomain(999, 1)).toBe(-ESRCH);
    expect(b.events.bindInterdomain(-1, 1)).toBe(-ESRCH);
    expect(acct(m, B).ports).toBe(0);
    const pc = port(c.events.bindInterdomain(A, forC));
    expect(c.events.status(pc)).toMatchObject({ status: EVTCHNSTAT_interdomain, remoteDom: A, remotePort: forC });
    const forB = port(c.events.allocUnbound(B));
    await m.destroyDomain(C);
    expect(b.events.bindInterdomain(C, forB)).toBe(-ESRCH);
    // a's port that c bound went back to unbound, accepting c.
    expect(a.events.status(forC)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: C, remotePort: 0, vcpu: 0 });
    expect(a.events.notify(forC)).toBe(0);
    expect(a.events.close(forC)).toBe(0);
  });

  it('-EPERM for unprivileged status/alloc in another domain; dom0 may do both', () => {
    const pa = port(a.events.allocUnbound(B));
    expect(b.hypercalls.evtchnStatus(pa, A)).toBe(-EPERM);
    expect(b.hypercalls.evtchnAllocUnbound(B, A)).toBe(-EPERM);
    expect(acct(m, A).ports).toBe(1);
    // The own domid, numerically, is the same as DOMID_SELF.
    expect(a.hypercalls.evtchnStatus(pa, A)).toMatchObject({ status: EVTCHNSTAT_unbound, remoteDom: B });
    const own = port(a.hypercalls.evtchnAllocUnbound(C, A));
    const d0 = m.dom0.platform!;
    expect(d0.hypercalls.evtchnStatus(pa, A)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: B, remotePort: 0, vcpu: 0 });
    expect(d0.hypercalls.evtchnStatus(1, 999)).toBe(-ESRCH);
    expect(d0.hypercalls.evtchnAllocUnbound(B, 999)).toBe(-ESRCH);
    // dom0 allocates in c a port that b may bind (what a toolstack does).
    const pc = port(d0.hypercalls.evtchnAllocUnbound(B, C));
    expect(acct(m, C).ports).toBe(1);
    expect(acct(m, 0).ports).toBe(0);
    expect(c.events.status(pc)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: B, remotePort: 0, vcpu: 0 });
    const pb = port(b.events.bindInterdomain(C, pc));
    expect(d0.hypercalls.evtchnStatus(pc, C)).toMatchObject({ status: EVTCHNSTAT_interdomain, remoteDom: B, remotePort: pb });
    const onC = vi.fn();
    c.events.on(pc, onC);
    expect(b.events.notify(pb)).toBe(0);
    expect(c.poll()).toBe(1);
    expect(onC).toHaveBeenCalledWith(pc);
    for (const [p, port_] of [[a, pa], [a, own], [c, pc], [b, pb]] as const) expect(p.events.close(port_)).toBe(0);
  });

  it('dom0 alloc_unbound in another domain with remote DOMID_SELF: the port accepts dom0 (the caller), as in Xen', () => {
    const d0 = m.dom0.platform!;
    const pa = port(d0.hypercalls.evtchnAllocUnbound(DOMID_SELF, A));
    expect(a.events.status(pa)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: 0, remotePort: 0, vcpu: 0 });
    const p0 = d0.events.bindInterdomain(A, pa);
    expect(p0).toBeGreaterThan(0);
    if (p0 > 0) expect(d0.events.close(p0)).toBe(0);
    expect(a.events.close(pa)).toBe(0);
  });

  it('remote domids: DOMID_SELF means self, reserved or negative ids -> -ESRCH; loopback works', () => {
    expect(a.events.allocUnbound(0x7ff1)).toBe(-ESRCH);
    expect(a.events.allocUnbound(-1)).toBe(-ESRCH);
    expect(a.events.allocUnbound(0x10000)).toBe(-ESRCH);
    const self = port(a.events.allocUnbound(DOMID_SELF));
    expect(a.events.status(self)).toMatchObject({ status: EVTCHNSTAT_unbound, remoteDom: A });
    const loop = port(a.events.bindInterdomain(DOMID_SELF, self));
    expect(loop).not.toBe(self);
    const hits: number[] = [];
    a.events.on(self, (p) => hits.push(p));
    a.events.on(loop, (p) => hits.push(p));
    a.poll();
    hits.length = 0;
    expect(a.events.notify(loop)).toBe(0);
    a.poll();
    expect(hits).toEqual([self]);
    expect(a.events.close(self)).toBe(0);
    expect(a.events.status(loop)).toMatchObject({ status: EVTCHNSTAT_unbound, remoteDom: A });
    expect(a.events.close(loop)).toBe(0);
    expect(acct(m, A).ports).toBe(0);
  });

  it('notifications coalesce: several sends, one handler call per poll', () => {
    const { pa, pb, onB } = connect();
    for (let i = 0; i < 5; i++) expect(a.events.notify(pa)).toBe(0);
    expect(b.poll()).toBe(1);
    expect(onB).toHaveBeenCalledTimes(1);
    expect(b.poll()).toBe(0);
    a.events.notify(pa);
    expect(b.poll()).toBe(1);
    expect(onB).toHaveBeenCalledTimes(2);
    a.events.close(pa);
    b.events.close(pb);
  });

  it('a handler may re-notify itself: the new event is not lost', () => {
    const { pa, pb } = connect();
    let n = 0;
    b.events.on(pb, () => {
      if (++n === 1) a.events.notify(pa);
    });
    a.events.notify(pa);
    expect(b.poll()).toBe(1);
    expect(b.poll()).toBe(1);
    expect(n).toBe(2);
    a.events.close(pa);
    b.events.close(pb);
  });

  it('a masked port is not delivered until unmasked, then once', () => {
    const { pa, pb, onB } = connect();
    const words = b.hypercalls.eventWords()!;
    expect(b.events.mask(pb)).toBe(0);
    Atomics.store(words.ctl, words.upcall, 0);
    a.events.notify(pa);
    a.events.notify(pa);
    expect(Atomics.load(words.ctl, words.upcall)).toBe(0); // no upcall for a masked port
    expect(b.poll()).toBe(0);
    expect(b.poll()).toBe(0);
    expect(onB).not.toHaveBeenCalled();
    expect(b.events.unmask(pb)).toBe(0);
    expect(Atomics.load(words.ctl, words.upcall)).toBe(1); // unmasking a pending port raises it
    expect(b.poll()).toBe(1);
    expect(onB).toHaveBeenCalledTimes(1);
    // Unmasking with nothing pending delivers nothing; mask is idempotent.
    expect(b.events.unmask(pb)).toBe(0);
    expect(b.poll()).toBe(0);
    expect(b.events.mask(pb)).toBe(0);
    expect(b.events.mask(pb)).toBe(0);
    expect(b.events.unmask(pb)).toBe(0);
    a.events.notify(pa);
    expect(b.poll()).toBe(1);
    a.events.close(pa);
    b.events.close(pb);
  });

  it('closing one end makes the peer port unbound, accepting the closer, which may bind again', () => {
    const { pa, pb, onA } = connect();
    expect(b.events.close(pb)).toBe(0);
    expect(b.events.status(pb)).toEqual({ status: EVTCHNSTAT_closed, remoteDom: 0, remotePort: 0, vcpu: 0 });
    expect(a.events.status(pa)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: B, remotePort: 0, vcpu: 0 });
    expect(acct(m, A).ports).toBe(1);
    expect(acct(m, B).ports).toBe(0);
    expect(a.events.notify(pa)).toBe(0);
    expect(b.poll()).toBe(0);
    const pb2 = port(b.events.bindInterdomain(A, pa));
    expect(a.events.status(pa)).toMatchObject({ status: EVTCHNSTAT_interdomain, remotePort: pb2 });
    b.events.notify(pb2);
    expect(a.poll()).toBe(1);
    expect(onA).toHaveBeenCalledTimes(1);
    // The other way: the allocating side closes.
    expect(a.events.close(pa)).toBe(0);
    expect(b.events.status(pb2)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: A, remotePort: 0, vcpu: 0 });
    expect(b.events.close(pb2)).toBe(0);
  });

  it('a handler closed through events.close no longer runs; pending ports without handler are spurious', () => {
    const { pa, pb, onB } = connect();
    b.events.off(pb);
    a.events.notify(pa);
    const spurious = b.loop.spurious;
    expect(b.poll()).toBe(0);
    expect(b.loop.spurious).toBe(spurious + 1);
    b.events.on(pb, onB);
    a.events.notify(pa);
    expect(b.poll()).toBe(1);
    expect(b.events.close(pb)).toBe(0);
    expect(b.events.close(pb)).toBe(-EINVAL);
    a.events.close(pa);
  });

  it('the port quota: -ENOSPC for alloc and bind, usable again after a close', () => {
    // a has maxPorts 8: ports 1..7.
    const mine: number[] = [];
    for (let i = 0; i < 7; i++) mine.push(port(a.events.allocUnbound(B)));
    expect(mine).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(acct(m, A).ports).toBe(7);
    expect(a.events.allocUnbound(B)).toBe(-ENOSPC);
    const pb = port(b.events.allocUnbound(A));
    expect(a.events.bindInterdomain(B, pb)).toBe(-ENOSPC);
    expect(b.events.status(pb)).toMatchObject({ status: EVTCHNSTAT_unbound });
    expect(a.events.close(4)).toBe(0);
    expect(port(a.events.bindInterdomain(B, pb))).toBe(4);
    expect(acct(m, A).ports).toBe(7);
    for (const p of mine) expect(a.events.close(p)).toBe(0);
    expect(b.events.close(pb)).toBe(0);
    expect(acct(m, A).ports).toBe(0);
  });

  it('a handler that throws does not stop the others', () => {
    const p1 = port(a.events.allocUnbound(B));
    const p2 = port(a.events.allocUnbound(B));
    const q1 = port(b.events.bindInterdomain(A, p1));
    const q2 = port(b.events.bindInterdomain(A, p2));
    const ok = vi.fn();
    b.events.on(q1, () => {
      throw new Error('boom');
    });
    b.events.on(q2, ok);
    b.poll();
    expect(errors).toEqual([q1]);
    expect(ok).toHaveBeenCalledTimes(1);
    a.events.notify(p1);
    a.events.notify(p2);
    expect(b.poll()).toBe(2);
    expect(errors).toEqual([q1, q1]);
    expect(ok).toHaveBeenCalledTimes(2);
  });

  it('a peer destroyed: our port becomes unbound and sends go nowhere; its calls fail with -ESRCH', async () => {
    const { pa, pb } = connect();
    await m.destroyDomain(B);
    expect(a.events.status(pa)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: B, remotePort: 0, vcpu: 0 });
    expect(a.events.notify(pa)).toBe(0);
    expect(b.events.notify(pb)).toBe(-ESRCH);
    expect(b.events.status(pb)).toBe(-ESRCH);
    expect(b.events.allocUnbound(A)).toBe(-ESRCH);
    expect(b.events.bindInterdomain(A, pa)).toBe(-ESRCH);
    expect(b.events.close(pb)).toBe(-ESRCH);
    expect(b.events.mask(pb)).toBe(-ESRCH);
    expect(b.events.unmask(pb)).toBe(-ESRCH);
    expect(a.events.close(pa)).toBe(0);
  });

  it('the asynchronous event loop delivers without poll()', async () => {
    const h = await m.createDomain({ mode: 'local', name: 'async' });
    const p = h.platform!;
    const pa = port(a.events.allocUnbound(h.domid));
    const pd = port(p.events.bindInterdomain(A, pa));
    const seen = vi.fn();
    p.events.on(pd, seen);
    a.events.notify(pa);
    await vi.waitFor(() => expect(seen).toHaveBeenCalled(), { timeout: 2000, interval: 2 });
    await m.destroyDomain(h.domid);
    expect(a.events.status(pa)).toMatchObject({ status: EVTCHNSTAT_unbound, remoteDom: h.domid });
    expect(a.events.close(pa)).toBe(0);
  });
});
