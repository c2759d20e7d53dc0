"""matcalc's rule tables (`*.rules`), shipped inside the installed package as `matcalc.rules`."""
