"""Reports on what the gateway wrote: latency statistics (stats), the warnings a thin or failing
comparison calls for (caveats), their text tables (render), their chart as a PNG (png_chart) and
as inline SVG (svg_chart) in a self-contained page (page), with the colours and number formats
both charts share (chart_style); usage summed from usage records (usage, usage_files); and the
operators' status page (status_page).

Imports from shared/: the layers below it (up to probe and gateway).
"""
