/**
 * The left-sidebar panel: models, recent runs (tickable for comparison) and
 * open alerts. Refreshes on show, on the refresh button and every 30 s while
 * visible.
 */
import { refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { workbenchIcon } from './icon';
import { WorkbenchModel } from './model';
import { renderContent } from './render';
import { Page, PAGES, PAGE_TITLES } from './urls';

export const SIDEBAR_ID = 'workbench-sidebar';

/** How often the sidebar refreshes while visible, in milliseconds. */
export const REFRESH_INTERVAL = 30_000;

export namespace WorkbenchSidebar {
  export interface IOptions {
    model: WorkbenchModel;
    /** Open a dashboard page in a main-area tab. */
    openPage: (page: Page) => void;
    /** Compare the ticked runs. */
    compare: () => void;
    refreshInterval?: number;
  }
}

export class WorkbenchSidebar extends Widget {
  constructor(options: WorkbenchSidebar.IOptions) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-workbench-sidebar');
    this.title.icon = workbenchIcon;
    this.title.caption = 'Workbench';
    this.title.label = '';
    this._model = options.model;
    this._interval = options.refreshInterval ?? REFRESH_INTERVAL;

    const header = document.createElement('div');
    header.className = 'jp-workbench-header';
    const title = document.createElement('h2');
    title.className = 'jp-workbench-title';
    title.textContent = 'Workbench';
    header.appendChild(title);

    const refresh = this._button('jp-workbench-refresh', 'Refresh', () => {
      void this._model.refresh();
    });
    refresh.title = 'Refresh the workbench summary';
    refresh.prepend(refreshIcon.element({ tag: 'span', className: 'jp-workbench-button-icon' }));
    header.appendChild(refresh);
    this._compareButton = this._button('jp-workbench-compare', 'Compare', () =>
      options.compare()
    );
    this._compareButton.title = 'Compare the ticked runs on the Experiments page';
    header.appendChild(this._compareButton);
    this.node.appendChild(header);

    const pages = document.createElement('div');
    pages.className = 'jp-workbench-pages';
    for (const page of PAGES) {
      const b = this._button(`jp-workbench-page jp-workbench-page-${page}`, PAGE_TITLES[page], () =>
        options.openPage(page)
      );
      b.dataset.page = page;
      b.title = `Open the ${PAGE_TITLES[page]} dashboard`;
      pages.appendChild(b);
    }
    this.node.appendChild(pages);

    this._content = document.createElement('div');
    this._content.className = 'jp-workbench-content';
    this._content.addEventListener('change', this._onChange);
    this.node.appendChild(this._content);

    this._footer = document.createElement('div');
    this._footer.className = 'jp-workbench-footer';
    this.node.appendChild(this._footer);

    this._model.changed.connect(this._render, this);
    this._render();
  }

  get model(): WorkbenchModel {
    return this._model;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stopTimer();
    this._content.removeEventListener('change', this._onChange);
    this._model.changed.disconnect(this._render, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._model.refresh();
    this._startTimer();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopTimer();
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopTimer();
    super.onBeforeDetach(msg);
  }

  private _startTimer(): void {
    this._stopTimer();
    this._timer = window.setInterval(() => {
      if (this.isVisible) {
        void this._model.refresh();
      } else {
        this._stopTimer();
      }
    }, this._interval);
  }

  private _stopTimer(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _button(className: string, label: string, onClick: () => void): HTMLButtonElement {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `jp-workbench-button ${className}`;
    const text = document.createElement('span');
    text.className = 'jp-workbench-button-label';
    text.textContent = label;
    b.appendChild(text);
    b.addEventListener('click', onClick);
    return b;
  }

  private _onChange = (event: Event): void => {
    const target = event.target as HTMLInputElement | null;
    if (target && target.classList.contains('jp-workbench-run-select')) {
      this._model.setSelected(target.value, target.checked);
    }
  };

  private _render(): void {
    const model = this._model;
    const scroll = this._content.scrollTop;
    this._content.replaceChildren(
      renderContent({ summary: model.summary, error: model.error, selected: model.selected })
    );
    this._content.scrollTop = scroll;

    const count = model.selectedRunIds.length;
    const label = this._compareButton.querySelector('.jp-workbench-button-label');
    if (label) {
      label.textContent = count ? `Compare (${count})` : 'Compare';
    }
    this._compareButton.classList.toggle('jp-mod-ready', count >= 2);

    const updated = model.updated;
    this._footer.textContent = updated ? `Updated ${updated.toLocaleTimeString()}` : '';
  }

  private _model: WorkbenchModel;
  private _interval: number;
  private _timer: number | null = null;
  private _content: HTMLElement;
  private _footer: HTMLElement;
  private _compareButton: HTMLButtonElement;
}
