/**
 * The state shared by the sidebar and the status-bar item: the last summary,
 * the last error and the runs ticked for comparison.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { DEFAULT_DASHBOARD, ISummary } from './types';

export class WorkbenchModel {
  constructor(fetchSummary: () => Promise<ISummary>) {
    this._fetch = fetchSummary;
  }

  /** Emitted after every refresh and every change of the selection. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get summary(): ISummary | null {
    return this._summary;
  }

  get error(): string | null {
    return this._error;
  }

  /** When the last refresh ended (successfully or not). */
  get updated(): Date | null {
    return this._updated;
  }

  /** The dashboard root, relative to the base URL. */
  get dashboard(): string {
    return this._summary?.dashboard || DEFAULT_DASHBOARD;
  }

  get selected(): ReadonlySet<string> {
    return this._selected;
  }

  /** Ticked runs, in the order the sidebar lists them. */
  get selectedRunIds(): string[] {
    const runs = this._summary?.runs ?? [];
    return runs.map(r => r.run_id).filter(id => this._selected.has(id));
  }

  setSelected(runId: string, selected: boolean): void {
    const had = this._selected.has(runId);
    if (had === selected) {
      return;
    }
    if (selected) {
      this._selected.add(runId);
    } else {
      this._selected.delete(runId);
    }
    this._changed.emit();
  }

  clearSelection(): void {
    if (this._selected.size) {
      this._selected.clear();
      this._changed.emit();
    }
  }

  /** Fetch the summary; concurrent calls share one request. */
  refresh(): Promise<void> {
    if (!this._pending) {
      this._pending = this._refresh().finally(() => {
        this._pending = null;
      });
    }
    return this._pending;
  }

  private async _refresh(): Promise<void> {
    try {
      const summary = await this._fetch();
      this._summary = summary;
      this._error = null;
      // forget ticks on runs that are no longer listed
      const listed = new Set(summary.runs.map(r => r.run_id));
      for (const id of Array.from(this._selected)) {
        if (!listed.has(id)) {
          this._selected.delete(id);
        }
      }
    } catch (reason) {
      this._error = reason instanceof Error ? reason.message : String(reason);
    }
    this._updated = new Date();
    this._changed.emit();
  }

  private _fetch: () => Promise<ISummary>;
  private _summary: ISummary | null = null;
  private _error: string | null = null;
  private _updated: Date | null = null;
  private _selected = new Set<string>();
  private _pending: Promise<void> | null = null;
  private _changed = new Signal<this, void>(this);
}
