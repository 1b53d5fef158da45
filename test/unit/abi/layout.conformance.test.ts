/**
 * Every layout and constant of the TypeScript ABI layer against what gcc reports for the real
 * Xen headers (test/fixtures/abi/layout.json, written by gen/abi-vectors/gen.c).
 */
import { describe, expect, it } from 'vitest';
import {
  EVENT_PAGE_HEADER_FIELDS,
  EVT_HEADER_FIELDS,
  EVT_PAYLOADS,
  type PayloadLayout,
  REQ_HEADER_FIELDS,
  REQ_PAYLOADS,
  RESP_HEADER_FIELDS,
  RESP_PAYLOADS,
} from '../../../src/abi/displif-packets.js';
import { FIELD_SIZE, type FieldSpec } from '../../../src/abi/fields.js';
import { GRANT_ENTRY_V1_FIELDS } from '../../../src/abi/grant-table.js';
import * as abi from '../../../src/abi/index.js';
import { PGDIR_FIELDS } from '../../../src/abi/page-directory.js';
import { SRING_HEADER_FIELDS } from '../../../src/abi/ring-layout.js';
import { XS_IFACE_FIELDS, XSD_SOCKMSG_FIELDS } from '../../../src/abi/xs-wire.js';
import { loadLayout, type StructLayout } from '../../support/abi-fixtures.js';

const layout = loadLayout();

function struct(name: string): StructLayout {
  const s = layout.structs[name];
  if (!s) throw new Error(`layout.json has no struct ${name}`);
  return s;
}

/** Each TS field matches the C member at `prefix + name`: same offset, same size. */
function expectFields(structName: string, fields: readonly FieldSpec[], prefix = ''): void {
  const s = struct(structName);
  for (const f of fields) {
    const c = s.fields[prefix + f.name];
    expect(c, `${structName}.${prefix}${f.name} missing from layout.json`).toBeDefined();
    expect({ offset: f.offset, size: FIELD_SIZE[f.type] }, `${structName}.${prefix}${f.name}`).toEqual({
      offset: c!.offset,
      // gref[] is a flexible array: the TS spec describes one element.
      size: f.name === 'gref' ? 4 : c!.size,
    });
  }
}

function expectPayloads(outer: string, payloads: Readonly<Record<number, PayloadLayout>>): void {
  for (const p of Object.values(payloads)) {
    expect(p.size, `sizeof(${p.struct})`).toBe(struct(p.struct).size);
    expectFields(outer, p.fields, `op.${p.member}.`);
    expect(struct(outer).fields[`op.${p.member}`]?.offset).toBe(8);
  }
}

describe('struct layouts match gcc on the real headers', () => {
  it('displif packets are 64 bytes with the header fields where C puts them', () => {
    for (const s of ['xendispl_req', 'xendispl_resp', 'xendispl_evt', 'xendispl_event_page']) {
      expect(struct(s).size, s).toBe(abi.XENDISPL_PACKET_SIZE);
    }
    expectFields('xendispl_req', REQ_HEADER_FIELDS);
    expectFields('xendispl_resp', RESP_HEADER_FIELDS);
    expectFields('xendispl_evt', EVT_HEADER_FIELDS);
    expectFields('xendispl_event_page', EVENT_PAGE_HEADER_FIELDS);
  });

  it('every request, response and event payload', () => {
    expectPayloads('xendispl_req', REQ_PAYLOADS);
    expectPayloads('xendispl_resp', RESP_PAYLOADS);
    expectPayloads('xendispl_evt', EVT_PAYLOADS);
    expect(Object.keys(REQ_PAYLOADS)).toHaveLength(7);
  });

  it('page directory, grant entry, xsd_sockmsg, xenstore ring page, shared ring header', () => {
    expectFields('xendispl_page_directory', PGDIR_FIELDS);
    expectFields('grant_entry_v1', GRANT_ENTRY_V1_FIELDS);
    expect(struct('grant_entry_v1').size).toBe(abi.GRANT_ENTRY_V1_SIZE);
    expectFields('xsd_sockmsg', XSD_SOCKMSG_FIELDS);
    expect(struct('xsd_sockmsg').size).toBe(abi.XSD_SOCKMSG_SIZE);
    expectFields('xenstore_domain_interface', XS_IFACE_FIELDS);
    const iface = struct('xenstore_domain_interface');
    expect(iface.size).toBe(abi.XS_IFACE_SIZE);
    expect(iface.fields.req).toEqual({ offset: abi.XS_IFACE_REQ_OFFSET, size: abi.XENSTORE_RING_SIZE });
    expect(iface.fields.rsp).toEqual({ offset: abi.XS_IFACE_RSP_OFFSET, size: abi.XENSTORE_RING_SIZE });
    expectFields('xen_displif_sring', SRING_HEADER_FIELDS);
    const sring = struct('xen_displif_sring');
    expect(sring.fields.pvt).toEqual({ offset: abi.SRING_PVT, size: 4 });
    expect(sring.fields.__pad).toEqual({ offset: abi.SRING_PAD, size: 44 });
    expect(sring.fields.ring?.offset).toBe(abi.SRING_HEADER_SIZE);
  });

  it('ring size arithmetic is __CONST_RING_SIZE', () => {
    expect(abi.ringSize(abi.XENDISPL_PACKET_SIZE, 4096)).toBe(layout.constants.RING_SIZE_xen_displif_4096);
    expect(abi.ringSize(abi.XENDISPL_PACKET_SIZE, 4096)).toBe(32);
  });
});

describe('constants match the real headers', () => {
  const ts = abi as unknown as Record<string, unknown>;
  // Function-like macros and derived values the generator prints for reference only.
  const NOT_CONSTANTS = new Set(['RING_SIZE_xen_displif_4096']);

  it('every constant the headers define exists in the TS layer with the same value', () => {
    const missing: string[] = [];
    const wrong: string[] = [];
    for (const [name, value] of Object.entries(layout.constants)) {
      if (NOT_CONSTANTS.has(name)) continue;
      if (!(name in ts)) missing.push(name);
      else if (ts[name] !== value)
        wrong.push(`${name}: C ${JSON.stringify(value)}, TS ${JSON.stringify(ts[name])}`);
    }
    expect(wrong).toEqual([]);
    expect(missing).toEqual([]);
    expect(Object.keys(layout.constants).length).toBeGreaterThan(100);
  });

  it('every pixel format code matches drm_fourcc.h', () => {
    const fromC = layout.drm_formats ?? {};
    const fromTs = Object.fromEntries(abi.PIXEL_FORMATS.map((p) => [`DRM_FORMAT_${p.name}`, p.fourcc]));
    expect(fromTs).toEqual(fromC);
    expect(Object.keys(fromC)).toHaveLength(abi.PIXEL_FORMATS.length);
  });

  it('errno table, xsd_errors order, GNTST messages, XenbusState', () => {
    expect(abi.XEN_ERRNO).toEqual(layout.errno);
    expect([...abi.XSD_ERRORS]).toEqual(layout.xsd_errors);
    expect([...abi.GNTTABOP_ERROR_MSGS]).toEqual(layout.gntst_messages);
    const states = Object.fromEntries(
      Object.entries(abi.XenbusState).map(([k, v]) => [`XenbusState${k}`, v]),
    );
    expect(states).toEqual(layout.xenbus_states);
  });
});
