"""trialkit.domain"""
