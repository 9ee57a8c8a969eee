/**
 * The status-bar item: `credit-default v2 · 2 alerts`; a click opens the sidebar.
 */
import { Widget } from '@lumino/widgets';

import { WorkbenchModel } from './model';
import { statusText, statusTitle } from './status';

export class WorkbenchStatus extends Widget {
  constructor(model: WorkbenchModel, onClick: () => void) {
    super({ node: document.createElement('div') });
    this.addClass('jp-workbench-status');
    this.addClass('jp-mod-highlighted');
    this._model = model;
    this._text = document.createElement('span');
    this._text.className = 'jp-workbench-status-text';
    this.node.appendChild(this._text);
    this.node.addEventListener('click', onClick);
    model.changed.connect(this._update, this);
    this._update();
  }

  dispose(): void {
    if (!this.isDisposed) {
      this._model.changed.disconnect(this._update, this);
    }
    super.dispose();
  }

  private _update(): void {
    const { summary, error } = this._model;
    this._text.textContent = statusText(summary, error);
    this.node.title = statusTitle(summary, error);
    this.toggleClass('jp-mod-alerts', (summary?.open_alerts ?? 0) > 0);
    this.toggleClass('jp-mod-error', !!error);
  }

  private _model: WorkbenchModel;
  private _text: HTMLElement;
}
