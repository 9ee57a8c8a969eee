"""The floor under every dashboard page: Panel pages with no workbench code, served on 127.0.0.1 as the dashboard is.

`/text` holds one line of text; `/charts` a line of text and two small Bokeh line charts, as the Serving page's first
tab has. Run: python panel_floor.py PORT (bench_dashboard.py does)."""
import sys
import panel as pn
from bokeh.plotting import figure


def text(): return pn.Column(pn.pane.Markdown('# Floor'), pn.pane.Markdown('floor reached'))


def charts():
    figs = []
    for i in range(2):
        f = figure(height=280, sizing_mode='stretch_width', x_axis_type='datetime', title=f'chart {i}')
        f.line(list(range(200)), [x % 17 for x in range(200)], legend_label='champion v1')
        figs.append(pn.pane.Bokeh(f))
    return pn.Column(pn.pane.Markdown('# Floor'), pn.pane.Markdown('floor reached'), pn.Row(*figs, sizing_mode='stretch_width'))


if __name__ == '__main__':
    pn.extension()
    port = int(sys.argv[1])
    pn.serve({'text': text, 'charts': charts}, port=port, address='127.0.0.1', show=False, websocket_origin=[f'127.0.0.1:{port}'])
