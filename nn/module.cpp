namespace xg {}
