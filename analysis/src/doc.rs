//! A tiny document model rendered both to Markdown (`report.md`) and to a self-contained HTML
//! page (`report.html`, figures embedded as base64 PNG).

use crate::tables::Table;
use std::path::{Path, PathBuf};

/// A block of the report.
#[derive(Clone, Debug)]
pub enum Block {
    /// A heading of level 1–4.
    Heading(u8, String),
    /// A paragraph (Markdown inline syntax allowed: `code`, **bold** are kept as-is in HTML).
    Para(String),
    /// A bulleted list.
    List(Vec<String>),
    /// Preformatted text.
    Pre(String),
    /// A table.
    Table(Table),
    /// A figure: caption, PNG and SVG paths relative to the report folder.
    Figure(String, PathBuf, PathBuf),
    /// A collapsible group (a plain sub-section in Markdown).
    Details(String, Vec<Block>),
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Minimal inline Markdown for HTML: `code` and **bold**.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    let mut bold = false;
    let e = esc(s);
    let mut rest = e.as_str();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("**").filter(|_| !code) {
            out.push_str(if bold { "</b>" } else { "<b>" });
            bold = !bold;
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Renders to Markdown.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(l, t) => out.push_str(&format!("{} {t}\n\n", "#".repeat(*l as usize))),
            Block::Para(t) => out.push_str(&format!("{t}\n\n")),
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("* {i}\n"));
                }
                out.push('\n');
            }
            Block::Pre(t) => out.push_str(&format!("```text\n{}\n```\n\n", t.trim_end())),
            Block::Table(t) => {
                out.push_str(&t.to_markdown());
                out.push('\n');
            }
            Block::Figure(c, png, svg) => out.push_str(&format!(
                "![{c}]({})\n\n*{c}* ([SVG]({}))\n\n",
                png.display(),
                svg.display()
            )),
            Block::Details(s, inner) => {
                out.push_str(&format!("#### {s}\n\n"));
                out.push_str(&markdown(inner));
            }
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Renders a self-contained HTML page; PNGs are read from `base` and embedded.
pub fn html(title: &str, blocks: &[Block], base: &Path) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:'DejaVu Sans',Verdana,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
table{{border-collapse:collapse;font-size:13px;margin:1em 0;display:block;overflow-x:auto}}\
th,td{{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}}\
th{{background:#f0f0f0}}td.t{{text-align:left}}\
img{{max-width:100%;border:1px solid #eee}}pre{{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:12px}}\
figure{{margin:1em 0}}figcaption{{font-style:italic;color:#555}}details{{margin:.4em 0}}\
</style></head><body>\n",
        esc(title)
    );
    html_blocks(&mut out, blocks, base);
    out.push_str("</body></html>\n");
    out
}

fn html_blocks(out: &mut String, blocks: &[Block], base: &Path) {
    for b in blocks {
        match b {
            Block::Heading(l, t) => out.push_str(&format!("<h{l}>{}</h{l}>\n", inline(t))),
            Block::Para(t) => out.push_str(&format!("<p>{}</p>\n", inline(t))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Pre(t) => out.push_str(&format!("<pre>{}</pre>\n", esc(t))),
            Block::Table(t) => {
                out.push_str("<table><thead><tr>");
                for h in &t.header {
                    out.push_str(&format!("<th>{}</th>", esc(h)));
                }
                out.push_str("</tr></thead><tbody>\n");
                for r in &t.rows {
                    out.push_str("<tr>");
                    for c in r {
                        let text = !(c == "–" || c.is_empty() || c.parse::<f64>().is_ok());
                        let class = if text { " class=\"t\"" } else { "" };
                        out.push_str(&format!("<td{class}>{}</td>", esc(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody></table>\n");
            }
            Block::Figure(c, png, _) => {
                let src = match std::fs::read(base.join(png)) {
                    Ok(bytes) => format!("data:image/png;base64,{}", base64(&bytes)),
                    Err(_) => esc(&png.display().to_string()),
                };
                out.push_str(&format!(
                    "<figure><img src=\"{src}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
                    esc(c),
                    esc(c)
                ));
            }
            Block::Details(s, inner) => {
                out.push_str(&format!("<details><summary>{}</summary>\n", inline(s)));
                html_blocks(out, inner, base);
                out.push_str("</details>\n");
            }
        }
    }
}
