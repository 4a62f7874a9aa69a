// Line charts as inline SVG for `distgan report`: axes with "nice" tick values, one polyline per
// series, a legend. Pure functions of their input (no files), so the page needs no script or
// external resource to show them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace distgan::launcher {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points are left out of the line
};

// An <svg> of the series against a shared x axis, with `title` above and `x_label` below.
// Each series is one <polyline class="series" data-name="..."> with one point per finite (x, y).
std::string svg_line_chart(const std::string& title, const std::vector<Series>& series,
                           const std::string& x_label = "step");

// About `target` round tick values (1, 2 or 5 times a power of ten) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Text made safe for HTML element content and attribute values.
std::string html_escape(std::string_view text);

}  // namespace distgan::launcher
