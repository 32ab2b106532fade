//! How the commands draw the progress the domain reports: `bundle`'s items
//! ([`crate::bundle::Progress`]) and a model download ([`PullProgress`]), one bar at a time on
//! stderr, hidden where the printer turns progress off. The domain says what happens; this
//! decides how it looks.

use std::cell::RefCell;

use indicatif::{HumanBytes, ProgressBar};

use crate::bundle::Progress;
use crate::model_cache::{PullPhase, PullProgress};
use crate::output::Printer;

/// The bar on screen, if any: a new one replaces the last.
struct Slot<'a> {
    printer: &'a Printer,
    bar: RefCell<Option<ProgressBar>>,
}

impl<'a> Slot<'a> {
    fn new(printer: &'a Printer) -> Self {
        Slot {
            printer,
            bar: RefCell::new(None),
        }
    }

    fn show(&self, bar: ProgressBar) {
        if let Some(old) = self.bar.replace(Some(bar)) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }

    /// A warning above the bar, which is drawn again under it.
    fn warn(&self, message: &str) {
        match self.bar.borrow().as_ref() {
            Some(bar) => bar.suspend(|| self.printer.warn(message)),
            None => self.printer.warn(message),
        }
    }

    fn clear(&self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// Leaves the bar on screen as it stands (`finish` would fill it even after a failure).
    fn keep(&self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

/// Bundle progress: a bar per item on a terminal, a line per item with `-v`.
pub struct ItemBars<'a> {
    slot: Slot<'a>,
}

impl<'a> ItemBars<'a> {
    pub fn new(printer: &'a Printer) -> Self {
        ItemBars {
            slot: Slot::new(printer),
        }
    }
}

impl Progress for ItemBars<'_> {
    fn begin(&self, item: &str, total: Option<u64>) {
        self.slot.printer.detail(format!(
            "{item}{}",
            total
                .map(|t| format!(" ({})", HumanBytes(t)))
                .unwrap_or_default()
        ));
        let bar = self.slot.printer.progress_bar(
            total.unwrap_or(0),
            "  {msg:30!} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec}",
        );
        bar.set_message(item.to_string());
        self.slot.show(bar);
    }

    fn advance(&self, bytes: u64) {
        self.slot.advance(bytes);
    }

    fn end(&self) {
        self.slot.clear();
    }
}

/// How a model download looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullLook {
    /// `models pull`: a line per phase saying where a resumed download continues, and a bar of
    /// bytes, speed and time left that stays on screen as the record of the transfer.
    OnItsOwn,
    /// A download inside `bundle create`: one more bundle item.
    BundleItem,
}

/// A model download's progress, drawn as `look` says.
pub struct PullBars<'a> {
    items: ItemBars<'a>,
    file: String,
    look: PullLook,
}

impl<'a> PullBars<'a> {
    pub fn new(printer: &'a Printer, file: &str, look: PullLook) -> Self {
        PullBars {
            items: ItemBars::new(printer),
            file: file.to_string(),
            look,
        }
    }
}

impl PullProgress for PullBars<'_> {
    fn begin(&self, phase: PullPhase, total: Option<u64>, position: u64) {
        let verb = match phase {
            PullPhase::Verifying => "verifying",
            PullPhase::Downloading => "downloading",
        };
        if self.look == PullLook::BundleItem {
            self.items.begin(&format!("{verb} {}", self.file), total);
            self.items.advance(position);
            return;
        }
        // One line says what is happening and from where it continues; the bar under it
        // (on a terminal) keeps to bytes and speed so it fits an 80-column screen.
        let size = total
            .map(|t| format!(" ({})", HumanBytes(t)))
            .unwrap_or_default();
        let resume = if position > 0 {
            format!(", resuming at {}", HumanBytes(position))
        } else {
            String::new()
        };
        let printer = self.items.slot.printer;
        printer.info(format!("{verb} {}{size}{resume}", self.file));
        let bar = printer.progress_bar(
            total.unwrap_or(0),
            "  [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
        );
        bar.set_position(position);
        bar.reset_eta();
        self.items.slot.show(bar);
    }

    fn advance(&self, bytes: u64) {
        self.items.slot.advance(bytes);
    }

    fn note(&self, message: &str) {
        self.items.slot.warn(message);
    }

    fn end(&self) {
        match self.look {
            PullLook::OnItsOwn => self.items.slot.keep(),
            PullLook::BundleItem => self.items.slot.clear(),
        }
    }
}
