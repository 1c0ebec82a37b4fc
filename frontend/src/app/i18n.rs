//! The page's language: a signal every text reads through [`tr`], set from the browser's
//! preferred languages or the switch in the header, and reflected in `<html lang>` and the
//! document title.

use crate::i18n::{Lang, Msg, STORAGE_KEY};
use leptos::prelude::*;

#[derive(Clone, Copy)]
pub struct I18n {
    pub lang: RwSignal<Lang>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// `navigator.languages`, most preferred first.
fn browser_languages() -> Vec<String> {
    let Some(nav) = web_sys::window().map(|w| w.navigator()) else { return Vec::new() };
    let mut out: Vec<String> = nav.languages().iter().filter_map(|v| v.as_string()).collect();
    if out.is_empty() {
        out.extend(nav.language());
    }
    out
}

impl I18n {
    /// The saved choice, else the browser's languages; keeps `<html lang>` and the title in step.
    pub fn start() -> I18n {
        let saved = storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten()).and_then(|t| Lang::from_tag(&t));
        let lang = RwSignal::new(saved.unwrap_or_else(|| Lang::pick(&browser_languages())));
        Effect::new(move |_| {
            let l = lang.get();
            if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
                if let Some(html) = doc.document_element() {
                    let _ = html.set_attribute("lang", l.code());
                }
                doc.set_title(Msg::AppName.text(l));
            }
        });
        I18n { lang }
    }

    /// The user's choice, remembered for later visits.
    pub fn choose(&self, lang: Lang) {
        if let Some(s) = storage() {
            let _ = s.set_item(STORAGE_KEY, lang.code());
        }
        self.lang.set(lang);
    }

    /// The message in the current language (tracked: call it inside a reactive closure).
    pub fn t(&self, m: Msg) -> &'static str {
        m.text(self.lang.get())
    }

    /// The message with its placeholders filled (tracked).
    pub fn f(&self, m: Msg, args: &[(&str, &str)]) -> String {
        m.fill(self.lang.get(), args)
    }

    /// A model label in the current language (tracked).
    pub fn label(&self, label: &str) -> String {
        self.lang.get().label(label).into_owned()
    }

    /// A number with the language's decimal separator (tracked).
    pub fn num(&self, x: f64, decimals: usize) -> String {
        self.lang.get().decimal(x, decimals)
    }

    pub fn percent(&self, share: f64, decimals: usize) -> String {
        self.lang.get().percent(share, decimals)
    }
}

pub fn use_i18n() -> I18n {
    expect_context::<I18n>()
}

/// A message as a reactive view child or attribute value: `{tr(Msg::Analyse)}`.
pub fn tr(m: Msg) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let i = use_i18n();
    move || i.t(m)
}

/// The language switch in the header.
#[component]
pub fn LanguageSwitch() -> impl IntoView {
    let i = use_i18n();
    view! {
        <label class="lang-switch">
            <span class="sr-only">{tr(Msg::Language)}</span>
            <select data-testid="lang-switch" translate="no" on:change=move |ev| {
                if let Some(l) = Lang::from_tag(&event_target_value(&ev)) {
                    i.choose(l);
                }
            }>
                {Lang::ALL.into_iter().map(|l| view! {
                    <option value=l.code() selected=move || i.lang.get() == l lang=l.code()>{l.name()}</option>
                }).collect_view()}
            </select>
        </label>
    }
}
