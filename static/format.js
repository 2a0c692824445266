// tickwire dashboard: number and time formatting for people. Pure functions, no DOM.
// Every formatter returns null for a missing or non-finite input; the view shows "–" then.
"use strict";

(function (tw) {
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);

  const usd = new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });

  const UNITS = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
  ];

  tw.format = {
    isNum,

    /** 64123.45 → "$64,123.45" */
    price(x) {
      return isNum(x) ? usd.format(x) : null;
    },

    /** 2.41e12 → "$2.41T", 8.9e10 → "$89.00B"; below a million, a plain price. */
    compactUsd(x) {
      if (!isNum(x)) return null;
      for (const [size, unit] of UNITS) {
        if (Math.abs(x) >= size) return (x < 0 ? "-$" : "$") + (Math.abs(x) / size).toFixed(2) + unit;
      }
      return usd.format(x);
    },

    /** 1.2345 → "+1.23%", -3 → "-3.00%" (zero counts as up: "+0.00%"). */
    signedPct(x) {
      if (!isNum(x)) return null;
      const r = Math.round(x * 100) / 100;
      return (r < 0 ? "-" : "+") + Math.abs(r).toFixed(2) + "%";
    },

    /** 52.3 → "52.3%" */
    pct1(x) {
      return isNum(x) ? x.toFixed(1) + "%" : null;
    },

    /** 58.8 → "58.8" */
    fixed1(x) {
      return isNum(x) ? x.toFixed(1) : null;
    },

    /** An integer as text: 62 → "62". */
    integer(x) {
      return isNum(x) ? String(Math.round(x)) : null;
    },

    /** An age in ms → "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
    age(ms) {
      if (!isNum(ms)) return null;
      const s = Math.max(0, Math.floor(ms / 1000));
      if (s < 60) return s + " s ago";
      const m = Math.floor(s / 60);
      if (m < 60) return m + " min ago";
      const h = Math.floor(m / 60);
      if (h < 48) return h + " h ago";
      return Math.floor(h / 24) + " d ago";
    },
  };
})((window.tickwire = window.tickwire || {}));
