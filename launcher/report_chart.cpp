#include "launcher/report_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace distgan::launcher {

namespace {

constexpr double kWidth = 560, kHeight = 300;            // SVG user units
constexpr double kLeft = 64, kRight = 16, kBottom = 40;  // plot margins; the top one follows the legend
constexpr double kTitleHeight = 24, kLegendRow = 16;
constexpr double kCharWidth = 6.2;  // of an 11px sans-serif legend label, roughly
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

std::string format(double value, const char* spec = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, value);
  return buf;
}

// A tick label: short, and 0 rather than a rounding residue like 1e-17.
std::string tick_label(double value, double step) {
  if (std::abs(value) < step * 1e-9) return "0";
  return format(value, "%.4g");
}

// [lo, hi] widened when empty, so a constant series still gets an axis.
void widen(double& lo, double& hi) {
  if (hi > lo) return;
  const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
  lo -= pad;
  hi += pad;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  widen(lo, hi);
  const double raw = (hi - lo) / std::max(1, target);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / power;
  const double step = power * (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10);
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, const std::string& x_label) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
      }
  if (!std::isfinite(x_lo)) x_lo = y_lo = 0, x_hi = y_hi = 1;  // no points: empty axes
  widen(x_lo, x_hi);
  widen(y_lo, y_hi);
  // The y view runs from a tick to a tick; the x view is the steps logged.
  std::vector<double> y_ticks = nice_ticks(y_lo, y_hi);
  const double step_y = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : (y_hi - y_lo);
  y_lo = std::floor(y_lo / step_y + 1e-9) * step_y, y_hi = std::ceil(y_hi / step_y - 1e-9) * step_y;
  y_ticks.clear();
  for (double t = y_lo; t <= y_hi + step_y * 1e-9; t += step_y) y_ticks.push_back(t);
  const std::vector<double> x_ticks = nice_ticks(x_lo, x_hi);
  const double step_x = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1;

  // The legend: a row (or more) of entries between the title and the plot.
  std::string legend;
  double lx = kLeft, ly = kTitleHeight + 10;
  for (size_t k = 0; k < series.size(); ++k) {
    const double entry_w = 30 + kCharWidth * static_cast<double>(series[k].name.size()) + 14;
    if (lx > kLeft && lx + entry_w > kWidth - kRight) lx = kLeft, ly += kLegendRow;
    const std::string color = kColors[k % std::size(kColors)];
    legend += "<line x1=\"" + format(lx) + "\" x2=\"" + format(lx + 22) + "\" y1=\"" + format(ly) + "\" y2=\"" +
              format(ly) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/><text class=\"legend\" x=\"" +
              format(lx + 28) + "\" y=\"" + format(ly) + "\" dy=\"4\">" + html_escape(series[k].name) + "</text>\n";
    lx += entry_w;
  }
  const double top = ly + 14, plot_w = kWidth - kLeft - kRight, plot_h = kHeight - top - kBottom;
  auto px = [&](double x) { return kLeft + (x - x_lo) / (x_hi - x_lo) * plot_w; };
  auto py = [&](double y) { return top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h; };

  std::string svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + format(kWidth) + " " +
                    format(kHeight) + "\" width=\"" + format(kWidth) + "\" height=\"" + format(kHeight) +
                    "\" role=\"img\" aria-label=\"" + html_escape(title) + "\">\n";
  svg += "<text class=\"title\" x=\"" + format(kLeft) + "\" y=\"18\">" + html_escape(title) + "</text>\n" + legend;
  for (const double t : y_ticks) {
    const std::string y = format(py(t), "%.1f");
    svg += "<line class=\"grid\" x1=\"" + format(kLeft) + "\" x2=\"" + format(kLeft + plot_w) + "\" y1=\"" + y +
           "\" y2=\"" + y + "\"/><text class=\"tick\" text-anchor=\"end\" x=\"" + format(kLeft - 6) + "\" y=\"" + y +
           "\" dy=\"4\">" + tick_label(t, step_y) + "</text>\n";
  }
  for (const double t : x_ticks) {
    const std::string x = format(px(t), "%.1f");
    svg += "<line class=\"axis\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + format(top + plot_h) + "\" y2=\"" +
           format(top + plot_h + 5) + "\"/><text class=\"tick\" text-anchor=\"middle\" x=\"" + x + "\" y=\"" +
           format(top + plot_h + 18) + "\">" + tick_label(t, step_x) + "</text>\n";
  }
  svg += "<line class=\"axis\" x1=\"" + format(kLeft) + "\" x2=\"" + format(kLeft) + "\" y1=\"" + format(top) +
         "\" y2=\"" + format(top + plot_h) + "\"/><line class=\"axis\" x1=\"" + format(kLeft) + "\" x2=\"" +
         format(kLeft + plot_w) + "\" y1=\"" + format(top + plot_h) + "\" y2=\"" + format(top + plot_h) + "\"/>\n";
  svg += "<text class=\"label\" text-anchor=\"middle\" x=\"" + format(kLeft + plot_w / 2) + "\" y=\"" +
         format(kHeight - 6) + "\">" + html_escape(x_label) + "</text>\n";

  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const std::string color = kColors[k % std::size(kColors)];
    std::string points;
    size_t count = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      points += (count++ ? " " : "") + format(px(s.x[i]), "%.1f") + "," + format(py(s.y[i]), "%.1f");
    }
    svg += "<polyline class=\"series\" data-name=\"" + html_escape(s.name) + "\" data-points=\"" +
           std::to_string(count) + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.5\" points=\"" + points +
           "\"><title>" + html_escape(s.name) + "</title></polyline>\n";
    if (count == 1)  // a single point draws no line: mark it
      svg += "<circle cx=\"" + points.substr(0, points.find(',')) + "\" cy=\"" + points.substr(points.find(',') + 1) +
             "\" r=\"3\" fill=\"" + color + "\"/>\n";
  }
  return svg + "</svg>\n";
}

}  // namespace distgan::launcher
