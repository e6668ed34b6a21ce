"""The paper's proposed extensions beyond eq. 10: clustering without labels (`cluster`) and
the reconstruction energy as an EBGAN discriminator (`ebgan`)."""
