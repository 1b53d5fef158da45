/**
 * A presenter that shows every connector on several presenters at once (the viewer and VNC):
 * each call goes to all of them; a present completes when all of theirs have (a rejection of one
 * counts as presented, as for any output).
 */
import type { ConnectorInfo, ConnectorOutput, Frame, OutputConfig, Presenter } from './presenter.js';

export class TeePresenter implements Presenter {
  private readonly presenters: readonly Presenter[];

  constructor(presenters: readonly Presenter[]) {
    this.presenters = presenters;
  }

  openConnector(info: ConnectorInfo): ConnectorOutput {
    const outs = this.presenters.map((p) => p.openConnector(info));
    if (outs.length === 1) return outs[0]!;
    return {
      configure: (config: OutputConfig | undefined) => {
        for (const o of outs) o.configure(config);
      },
      present: (frame: Frame) => {
        const waits: Promise<void>[] = [];
        for (const o of outs) {
          const r = o.present(frame);
          if (r) waits.push(r);
        }
        if (waits.length === 0) return undefined;
        return Promise.allSettled(waits).then(() => undefined);
      },
      close: () => {
        for (const o of outs) o.close();
      },
    };
  }
}
