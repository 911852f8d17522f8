"""FID / KID evaluation: the 2015-12-05 Inception feature network, weight loaders, distances."""
