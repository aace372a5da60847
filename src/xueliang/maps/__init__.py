"""The map (一张图) that works offline: the basemap served from a local MBTiles file, the demo
city's own generated basemap, and the division boundaries an administrator loads.

    tiles       tile addresses: XYZ as browsers ask, TMS rows as MBTiles stores (pure)
    mbtiles     reading and writing MBTiles files (SQLite)
    democity    the demo city's geometry: roads, a river, blocks, division outlines (pure)
    vectormap   that geometry cut into vector tiles (MVT) of an MBTiles file: the demo's basemap
    basemap     that geometry drawn into PNG tiles (Pillow): a raster basemap, for the CLI's --raster
    boundaries  a GeoJSON FeatureCollection of division polygons, checked whole (pure)
    service     the basemap, loading and reading boundaries, ``division_at(lon, lat)``
"""
