/* plugindex search: runs in the browser over the build's prefix shards (search/v1/).
 *
 * No framework, no build step, no eval, no inline anything (the CSP allows 'self').
 * It fetches search/v1/manifest.json once, the key list of each query word's first
 * character (search/v1/k/, once per character), then for each word the one shard
 * whose key is the longest prefix of that word (gzip, inflated here), and ranks:
 * the whole name typed exactly first, then names that start with it, then words in
 * the other fields (weights were set by the build); prefixes and one-letter typos
 * (words of 4+ letters, same first letter) match too: a word none of whose shard's
 * terms match fetches the shards one typo away (`typoKeys`); a name that starts with
 * the words joined by "-", or is one typo from them, counts as having every word;
 * deprecated plugins come lower (the build lowered their scores) and say so. On the
 * search page (with #search-results) it shows ?q= results and the category/engine
 * filters; on other pages it shows the best results under the box as you type. Arrow
 * keys move through the results, Enter follows one, Escape closes. Without JavaScript
 * the form submits to the search page, which lists the plugins by letter and category.
 */
(function () {
  "use strict";

  var html = document.documentElement;
  var input = document.getElementById("q");
  if (!input || !window.fetch || !window.URL) {
    return;
  }
  var form = input.form;
  var base = new URL(html.getAttribute("data-root") || "./", window.location.href);
  var page = document.getElementById("search-results");
  var categorySelect = document.getElementById("search-category");
  var engineSelect = document.getElementById("search-engine");

  var WORD = /[\p{L}\p{N}_]+(?:\.[\p{L}\p{N}_]+)*/gu;
  var STOP = new Set(
    ("a an and are as at be by can for from has have in is it of on or that the this to " +
      "was will with your you its not all any into than then there these they when which " +
      "without").split(" ")
  );
  var MAX_CHARS = 256;
  var MAX_WORDS = 8;
  var LIMIT = page ? 20 : 8;
  var EXACT = 1;
  var PREFIX = 0.5;
  var TYPO = 0.4;
  var WHOLE_NAME = 1000;
  var TYPO_SHARDS = 2; // extra shards fetched per word that matched nothing
  var MIN_TYPO = 4; // letters a word needs for typos to match (the manifest says so too)

  var manifest = null;
  var shards = new Map(); // file -> Promise of the parsed shard (or key list)
  var current = 0; // the latest query's number: older answers are dropped
  var active = -1;

  // --- data ---------------------------------------------------------------------

  function loadManifest() {
    if (!manifest) {
      manifest = fetch(new URL("search/v1/manifest.json", base), { cache: "no-cache" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("search index: HTTP " + response.status);
          }
          return response.json();
        })
        .catch(function (error) {
          manifest = null;
          throw error;
        });
    }
    return manifest;
  }

  function inflate(buffer) {
    var bytes = new Uint8Array(buffer);
    if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
      // The server already undid the gzip (Content-Encoding): the bytes are JSON.
      return Promise.resolve(new TextDecoder().decode(bytes));
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }

  function loadGzipJson(path) {
    if (!shards.has(path)) {
      var promise = fetch(new URL("search/v1/" + path, base))
        .then(function (response) {
          if (!response.ok) {
            throw new Error("search data: HTTP " + response.status);
          }
          return response.arrayBuffer();
        })
        .then(inflate)
        .then(JSON.parse);
      promise.catch(function () {
        shards.delete(path);
      });
      shards.set(path, promise);
    }
    return shards.get(path);
  }

  function fileName(key, hash) {
    var safe = key;
    if (!/^[a-z0-9_-]+$/.test(key)) {
      safe = "x";
      new TextEncoder().encode(key).forEach(function (b) {
        safe += (b < 16 ? "0" : "") + b.toString(16);
      });
    }
    return safe + "." + hash + ".json.gz";
  }

  // The first character of a word (a whole code point, as the build counts them).
  function firstChar(word) {
    return String.fromCodePoint(word.codePointAt(0));
  }

  // Load the key lists of the words' first characters; return key -> shard hash.
  function loadKeys(index, queryWords) {
    var roots = [];
    queryWords.forEach(function (w) {
      var root = firstChar(w);
      if (Object.prototype.hasOwnProperty.call(index.roots, root) && roots.indexOf(root) < 0) {
        roots.push(root);
      }
    });
    return Promise.all(
      roots.map(function (root) {
        return loadGzipJson("k/" + fileName(root, index.roots[root]));
      })
    ).then(function (lists) {
      var keys = new Map();
      lists.forEach(function (list) {
        Object.keys(list).forEach(function (key) {
          keys.set(key, list[key]);
        });
      });
      return keys;
    });
  }

  function shardKey(keys, word) {
    var chars = Array.from(word);
    for (var n = Math.min(chars.length, 16); n >= 1; n--) {
      var key = chars.slice(0, n).join("");
      if (keys.has(key)) {
        return key;
      }
    }
    return null;
  }

  // --- matching and ranking -----------------------------------------------------

  function words(text) {
    var found = text.slice(0, MAX_CHARS).toLowerCase().match(WORD) || [];
    var seen = [];
    found.forEach(function (w) {
      if (!STOP.has(w) && seen.indexOf(w) < 0) {
        seen.push(w);
      }
    });
    return seen.slice(0, MAX_WORDS);
  }

  // Whether a and b are at most one edit apart (insert, delete, replace or swap).
  function oneEdit(a, b) {
    if (a === b) {
      return true;
    }
    var la = a.length;
    var lb = b.length;
    if (Math.abs(la - lb) > 1) {
      return false;
    }
    var i = 0;
    while (i < la && i < lb && a[i] === b[i]) {
      i++;
    }
    if (la === lb) {
      if (a.slice(i + 1) === b.slice(i + 1)) {
        return true;
      }
      return a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
    }
    return la > lb ? a.slice(i + 1) === b.slice(i) : a.slice(i) === b.slice(i + 1);
  }

  function weightOf(term, word) {
    if (term === word) {
      return EXACT;
    }
    if (term.lastIndexOf(word, 0) === 0) {
      return PREFIX;
    }
    if (word.length >= MIN_TYPO && term[0] === word[0] && oneEdit(term, word)) {
      return TYPO;
    }
    return 0;
  }

  // Return name -> [score, doc] for one word (or the whole name) in its shard.
  function matches(shard, word) {
    var found = new Map();
    function add(ref, score) {
      var doc = shard.docs[ref];
      var seen = found.get(doc[0]);
      if (!seen || seen[0] < score) {
        found.set(doc[0], [score, doc]);
      }
    }
    Object.keys(shard.terms).forEach(function (term) {
      var weight = weightOf(term, word);
      if (!weight) {
        return;
      }
      var postings = shard.terms[term][1];
      for (var i = 0; i < postings.length; i += 2) {
        add(postings[i], postings[i + 1] * weight);
      }
    });
    if (shard.more && shard.key === word) {
      for (var j = 0; j < shard.more.length; j += 2) {
        add(shard.more[j], shard.more[j + 1] * PREFIX);
      }
    }
    return found;
  }

  // Return name -> [score, doc] for one word over its shards (best score per plugin).
  function matchesIn(list, word) {
    var found = new Map();
    list.forEach(function (shard) {
      matches(shard, word).forEach(function (value, name) {
        var seen = found.get(name);
        if (!seen || seen[0] < value[0]) {
          found.set(name, value);
        }
      });
    });
    return found;
  }

  // `loaded`: word (and the whole name) -> the shards fetched for it.
  function rank(index, queryWords, loaded, filters) {
    var whole = queryWords.join("-");
    var totals = new Map(); // name -> {score, hits, doc}
    function collect(found, hits) {
      found.forEach(function (value, name) {
        var entry = totals.get(name);
        if (!entry) {
          entry = { score: 0, hits: 0, doc: value[1] };
          totals.set(name, entry);
        }
        entry.score += value[0];
        entry.hits = hits ? Math.max(entry.hits, hits) : entry.hits + 1;
      });
    }
    queryWords.forEach(function (word) {
      collect(matchesIn(loaded.get(word) || [], word), 0);
    });
    if (queryWords.length > 1) {
      // A name that starts with the words joined by "-" (or is one typo from it) has
      // every word, even where a word's own postings were too many to keep it.
      collect(matchesIn(loaded.get(whole) || [], whole), queryWords.length);
    }
    var category = filters.category ? index.categories.indexOf(filters.category) : -1;
    var rows = [];
    totals.forEach(function (entry, name) {
      var doc = entry.doc;
      if (filters.category && doc[3].indexOf(category) < 0) {
        return;
      }
      if (filters.engine && doc[4].indexOf(filters.engine) < 0) {
        return;
      }
      if (name === whole) {
        entry.score += WHOLE_NAME;
        entry.hits = queryWords.length;
      } else if (whole.length >= MIN_TYPO && name[0] === whole[0] && oneEdit(name, whole)) {
        // The whole name, one typo away: next to an exact name, above names that share words.
        entry.score += WHOLE_NAME * TYPO;
        entry.hits = queryWords.length;
      }
      rows.push(entry);
    });
    var most = rows.reduce(function (m, e) {
      return Math.max(m, e.hits);
    }, 0);
    if (most === queryWords.length) {
      // Some plugins have every word: show only those.
      rows = rows.filter(function (e) {
        return e.hits === most;
      });
    }
    rows.sort(function (a, b) {
      return (
        a.doc[5] - b.doc[5] ||
        b.hits - a.hits ||
        b.score - a.score ||
        (a.doc[0] < b.doc[0] ? -1 : a.doc[0] > b.doc[0] ? 1 : 0)
      );
    });
    return rows;
  }

  // Fetch the shards each word needs (`keysOf(word)`: their keys); return word -> shards.
  function loadFor(keys, wordList, keysOf) {
    var perWord = wordList.map(keysOf);
    return Promise.all(
      perWord.map(function (list) {
        return Promise.all(
          list.map(function (key) {
            return loadGzipJson("t/" + fileName(key, keys.get(key)));
          })
        );
      })
    ).then(function (loadedLists) {
      var loaded = new Map();
      wordList.forEach(function (w, i) {
        loaded.set(w, loadedLists[i]);
      });
      return loaded;
    });
  }

  // Whether some term of the shards matches the word (exactly, as a prefix or a typo).
  function hasMatch(list, word) {
    return (list || []).some(function (shard) {
      return (
        (shard.more && shard.key === word) ||
        Object.keys(shard.terms).some(function (term) {
          return weightOf(term, word) > 0;
        })
      );
    });
  }

  // The keys a one-letter typo in `word` may have led away from, when its own shard
  // (`own`) holds no match: a word's shard is that of the longest key starting it, so
  // a typo before the key's end sends it to another shard than the word meant. These
  // are the deepest keys (at least as long as `own`) within one edit of a prefix of the
  // word, same first letter, at most TYPO_SHARDS of them, longest first.
  function typoKeys(keys, word, own) {
    if (Array.from(word).length < MIN_TYPO || own === null) {
      return [];
    }
    var found = [];
    keys.forEach(function (hash, key) {
      if (key.length < own.length || key[0] !== word[0] || word.lastIndexOf(key, 0) === 0) {
        return;
      }
      for (var d = -1; d <= 1; d++) {
        var prefix = word.slice(0, key.length + d);
        if (prefix.length > 1 && oneEdit(prefix, key)) {
          found.push(key);
          return;
        }
      }
    });
    var deepest = found.filter(function (key) {
      return !found.some(function (other) {
        return other !== key && other.lastIndexOf(key, 0) === 0;
      });
    });
    deepest.sort(function (a, b) {
      return b.length - a.length || (a < b ? -1 : a > b ? 1 : 0);
    });
    return deepest.slice(0, TYPO_SHARDS);
  }

  function search(text, filters) {
    var queryWords = words(text);
    if (!queryWords.length) {
      return Promise.resolve({ words: queryWords, rows: [] });
    }
    return loadManifest().then(function (index) {
      var wanted = queryWords.slice();
      if (queryWords.length > 1) {
        wanted.push(queryWords.join("-"));
      }
      return loadKeys(index, queryWords).then(function (keys) {
        return loadFor(keys, wanted, function (w) {
          var key = shardKey(keys, w);
          return key === null ? [] : [key];
        }).then(function (loaded) {
          var missed = queryWords.filter(function (w) {
            return !hasMatch(loaded.get(w), w);
          });
          // The whole name is tried again only when a word missed too (a typo).
          if (missed.length && wanted.length > queryWords.length) {
            var whole = wanted[wanted.length - 1];
            if (!hasMatch(loaded.get(whole), whole)) {
              missed.push(whole);
            }
          }
          if (!missed.length) {
            return loaded;
          }
          return loadFor(keys, missed, function (w) {
            return typoKeys(keys, w, shardKey(keys, w));
          }).then(function (more) {
            more.forEach(function (list, w) {
              loaded.set(w, loaded.get(w).concat(list));
            });
            return loaded;
          });
        });
      }).then(function (loaded) {
        return { words: queryWords, rows: rank(index, queryWords, loaded, filters) };
      });
    });
  }

  // --- the page -----------------------------------------------------------------

  var list = document.createElement("ul");
  list.id = "search-listbox";
  list.className = page ? "rows search-list" : "rows search-suggest";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Search results");
  var status = document.createElement("p");
  status.className = "hint search-status";
  if (page) {
    status.setAttribute("role", "status");
    page.appendChild(status);
    page.appendChild(list);
  } else {
    list.hidden = true;
    form.insertAdjacentElement("afterend", list);
  }
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");

  function pluginUrl(name) {
    return new URL("plugins/" + encodeURIComponent(name) + "/", base).href;
  }

  function option(entry, position) {
    var doc = entry.doc;
    var item = document.createElement("li");
    item.id = "search-option-" + position;
    item.setAttribute("role", "option");
    item.setAttribute("aria-selected", "false");
    var link = document.createElement("a");
    link.href = pluginUrl(doc[0]);
    link.textContent = doc[0];
    link.tabIndex = -1;
    item.appendChild(link);
    if (doc[1]) {
      var version = document.createElement("span");
      version.className = "ver";
      version.textContent = " " + doc[1];
      item.appendChild(version);
    }
    if (doc[5]) {
      var badge = document.createElement("span");
      badge.className = "badge yanked";
      badge.textContent = "yanked";
      item.appendChild(document.createTextNode(" "));
      item.appendChild(badge);
    }
    if (doc.length > 6) {
      // Deprecated by its owners (ranked lower at build time); doc[6]: the replacement.
      var deprecated = document.createElement("span");
      deprecated.className = "badge deprecated";
      deprecated.textContent = doc[6] ? "deprecated, use " + doc[6] + " instead" : "deprecated";
      item.appendChild(document.createTextNode(" "));
      item.appendChild(deprecated);
    }
    var description = document.createElement("p");
    description.textContent = doc[2];
    item.appendChild(description);
    item.addEventListener("mousedown", function (event) {
      event.preventDefault(); // keep the focus in the box; the link's click follows
    });
    return item;
  }

  function setActive(position) {
    var items = list.querySelectorAll("[role=option]");
    active = items.length ? (position + items.length) % items.length : -1;
    items.forEach(function (item, i) {
      item.setAttribute("aria-selected", i === active ? "true" : "false");
    });
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function show(result, text, index) {
    list.textContent = "";
    active = -1;
    input.removeAttribute("aria-activedescendant");
    var rows = result.rows.slice(0, LIMIT);
    rows.forEach(function (entry, i) {
      list.appendChild(option(entry, i));
    });
    var open = rows.length > 0 || (page !== null && text !== "");
    list.hidden = !page && !rows.length;
    input.setAttribute("aria-expanded", open ? "true" : "false");
    if (page) {
      if (!text.trim()) {
        status.textContent = "";
      } else if (!result.words.length) {
        status.textContent =
          "No search words in \u201c" + text + "\u201d: symbols and words such as " +
          "\u201cor\u201d and \u201cthe\u201d are not searched.";
      } else if (!result.rows.length) {
        status.textContent = "No plugin matches \u201c" + text + "\u201d.";
      } else {
        var shown = rows.length < result.rows.length ? ", the first " + rows.length + " shown" : "";
        status.textContent =
          result.rows.length + " plugin" + (result.rows.length === 1 ? "" : "s") +
          " match" + (result.rows.length === 1 ? "es" : "") + shown + ".";
      }
    }
    document.documentElement.setAttribute("data-search-ready", String(index));
  }

  function filters() {
    return {
      category: categorySelect && page ? categorySelect.value : "",
      engine: engineSelect && page ? engineSelect.value : "",
    };
  }

  function run() {
    var text = input.value;
    var mine = ++current;
    search(text, filters()).then(
      function (result) {
        if (mine === current) {
          show(result, text, mine);
        }
      },
      function (error) {
        if (mine === current) {
          status.textContent = "Search is unavailable right now (" + error.message + ").";
          list.textContent = "";
          list.hidden = !page;
          document.documentElement.setAttribute("data-search-ready", String(mine));
        }
      }
    );
    if (page && window.history && window.history.replaceState) {
      var url = new URL(window.location.href);
      if (text) {
        url.searchParams.set("q", text);
      } else {
        url.searchParams.delete("q");
      }
      window.history.replaceState(null, "", url.href);
    }
  }

  var timer = 0;
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, 60);
  });
  input.addEventListener("keydown", function (event) {
    var items = list.querySelectorAll("[role=option]");
    if (event.key === "ArrowDown" && items.length) {
      event.preventDefault();
      list.hidden = false;
      setActive(active + 1);
    } else if (event.key === "ArrowUp" && items.length) {
      event.preventDefault();
      setActive(active < 0 ? items.length - 1 : active - 1);
    } else if (event.key === "Enter" && active >= 0 && items[active]) {
      event.preventDefault();
      window.location.href = items[active].querySelector("a").href;
    } else if (event.key === "Escape") {
      setActive(-1);
      if (!page) {
        list.hidden = true;
        input.setAttribute("aria-expanded", "false");
      }
    }
  });
  if (!page) {
    input.addEventListener("blur", function () {
      window.setTimeout(function () {
        list.hidden = true;
        input.setAttribute("aria-expanded", "false");
      }, 150);
    });
    input.addEventListener("focus", function () {
      if (list.children.length) {
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
      }
    });
  } else {
    form.addEventListener("submit", function (event) {
      event.preventDefault(); // already on the search page: answer here
      window.clearTimeout(timer);
      run();
    });
    [categorySelect, engineSelect].forEach(function (select) {
      if (select) {
        select.addEventListener("change", run);
      }
    });
    var asked = new URL(window.location.href).searchParams.get("q");
    if (asked) {
      input.value = asked;
      run();
    }
  }

  // For tests and the benchmark: the same ranking, called without the page.
  window.plugindexSearch = function (text, chosen) {
    return search(text, chosen || { category: "", engine: "" }).then(function (result) {
      return result.rows.map(function (entry) {
        return entry.doc[0];
      });
    });
  };
})();
