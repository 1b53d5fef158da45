/** XenBus device states (`xen/include/public/io/xenbus.h`, enum xenbus_state). */

export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  /** Finished early initialisation, waiting for information from the peer or hotplug scripts. */
  InitWait: 2,
  /** Waiting for a connection from the peer. */
  Initialised: 3,
  Connected: 4,
  /** The device is being closed due to an error or an unplug event. */
  Closing: 5,
  Closed: 6,
  /** Reconfiguring: the device is being reconfigured. */
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;

export type XenbusStateValue = (typeof XenbusState)[keyof typeof XenbusState];
export type XenbusStateName = keyof typeof XenbusState;

const NAMES: readonly XenbusStateName[] = Object.keys(XenbusState) as XenbusStateName[];

export function isXenbusState(v: number): v is XenbusStateValue {
  return Number.isInteger(v) && v >= 0 && v < NAMES.length;
}

/** "Connected" for 4; "invalid state 9" for anything outside the enum. */
export function xenbusStateName(v: number): string {
  return isXenbusState(v) ? NAMES[v]! : `invalid state ${v}`;
}

/**
 * Parses a XenStore `state` node: a decimal number. As in Linux (`xenbus_read_driver_state`),
 * a node that cannot be read as a state is XenbusStateUnknown; values outside the enum too.
 */
export function parseXenbusState(text: string): XenbusStateValue {
  if (!/^[0-9]{1,9}$/.test(text.trim())) return XenbusState.Unknown;
  const v = Number(text.trim());
  return isXenbusState(v) ? v : XenbusState.Unknown;
}
