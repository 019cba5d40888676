'use strict';
// Strings of every kind V8 distinguishes in a snapshot: short and long
// (> 1024 chars) sequential strings, one- and two-byte, cons (concatenated)
// strings and ropes, sliced strings, internalized strings, astral/emoji,
// lone surrogates, control characters, duplicates, and strings used as
// property names (quotes, commas, braces, very long names).
const { run } = require('./lib/snapshot');

function longString(seed, len) {
  let s = '';
  let x = seed;
  while (s.length < len) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += x.toString(36);
  }
  return s.slice(0, len);
}

run((keep) => {
  keep.short = Array.from({ length: 3000 }, (_, i) => 's' + i);
  keep.long = Array.from({ length: 40 }, (_, i) => longString(i + 1, 1025 + i * 997));
  keep.twoByteLong = Array.from({ length: 10 }, (_, i) => 'Ελληνικά—中文—' + longString(i + 100, 2000) + '\u2603');
  keep.nonAscii = ['café', 'naïve', 'Ωmega', 'Привет', '日本語', 'עברית', 'العربية', '\u00ff\u00fe'];
  keep.astral = ['😀', '👩‍👩‍👧‍👦', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', 'a😀b', '\u{10FFFF}', '🏳️‍🌈'.repeat(50)];
  keep.loneSurrogates = ['\uD800', 'x\uDC00y', '\uDBFF' + 'tail'.repeat(5), 'ok\uD83D'];
  keep.control = ['\u0000nul', 'tab\tnew\nline\r', '\u001f\u007f', 'back\\slash', 'quote"s\'s', '<html>&amp;</html>'];

  // Cons strings: concatenations of >= 13 chars are not flattened.
  const pieceA = longString(7, 600);
  const pieceB = longString(8, 700);
  keep.cons = Array.from({ length: 500 }, (_, i) => pieceA + i + pieceB);
  let rope = 'rope-start-';
  for (let i = 0; i < 200; i++) rope = rope + '-segment-' + i + '-' + pieceA.slice(0, 20);
  keep.rope = rope;
  keep.consTwoByte = Array.from({ length: 50 }, (_, i) => keep.twoByteLong[i % 10] + '😀' + i);

  // Sliced strings: substrings (>= 13 chars) of a long parent.
  const parent = longString(9, 50000);
  keep.parentHeldOnlyBySlices = Array.from({ length: 500 }, (_, i) => parent.substring(i * 10, i * 10 + 40 + i));
  const parent2 = longString(10, 30000);
  keep.parent2 = parent2;
  keep.slices2 = Array.from({ length: 200 }, (_, i) => parent2.slice(i, i + 13));

  // Duplicates: equal contents, distinct string objects.
  keep.duplicates = Array.from({ length: 1000 }, (_, i) => ['dup', 'licate-', String(i % 10)].join(''));

  // Internalized strings as property names, including awkward ones.
  const names = [
    'plain', 'with,comma', "it's", 'say "hi"', '{brace}', 'close}', '{', '}', ',', "'", '"',
    'a,b,c', 'ünïcödé', '日本語', '😀key', '\uFF10fullwidth', 'sp ace', '', '01', '1e3', '-1',
    'k'.repeat(130), 'q,'.repeat(70), longString(11, 2000),
  ];
  keep.propertyNames = names;
  keep.byName = Array.from({ length: 40 }, (_, i) => {
    const o = {};
    for (const n of names) o[n] = i;
    return o;
  });
  keep.stringKeyed = new Map(names.map((n) => [n, n + '!']));
  keep.numbersAsStrings = Array.from({ length: 500 }, (_, i) => String(i * 7919));
  keep.templates = Array.from({ length: 300 }, (_, i) => `template ${i} with ${'x'.repeat(i % 30)}`);
  keep.jsonish = Array.from({ length: 100 }, (_, i) => JSON.stringify({ i, s: 'v' + i, a: [i, 'x'] }));
});
